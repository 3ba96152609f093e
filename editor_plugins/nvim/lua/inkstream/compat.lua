-- Everything that differs between Neovim 0.7 and current releases lives here,
-- detected by feature (or by version where the difference is a calling
-- convention that cannot be probed), so the other modules read the same on
-- every version.
local M = {}

local function has(version)
  return vim.fn.has('nvim-' .. version) == 1
end
M.has = has

-- 0.11 turned client.request(...) into the method client:request(...).
local method_calls = has('0.11')

function M.request(client, method, params, handler, bufnr)
  if method_calls then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.cancel_request(client, id)
  if method_calls then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

function M.is_stopped(client)
  if method_calls then
    return client:is_stopped()
  end
  return client.is_stopped()
end

-- Inline virtual text (pushes the rest of the line right) arrived in 0.10.
function M.inline_virt_text()
  return has('0.10')
end

function M.get_client(id)
  return id and vim.lsp.get_client_by_id(id) or nil
end

-- Neovim 0.12+ renders textDocument/inlineCompletion itself. When the writer
-- turned that on for a buffer, this plugin stays out of the way there.
local function builtin_module()
  -- vim.lsp loads its submodules lazily on index (0.10+); 0.7 has no such key.
  local ok, mod = pcall(function()
    return vim.lsp.inline_completion
  end)
  return ok and type(mod) == 'table' and mod or nil
end

function M.has_builtin_inline_completion()
  return builtin_module() ~= nil
end

function M.builtin_inline_completion(bufnr)
  local ic = builtin_module()
  if not ic or type(ic.is_enabled) ~= 'function' then
    return false
  end
  local ok, enabled = pcall(ic.is_enabled, { bufnr = bufnr })
  return ok and enabled == true
end

-- Health reports: require('health').report_* on 0.7-0.8, vim.health.* on 0.9+.
function M.health()
  local h = vim.health
  if type(h) == 'table' and type(h.start) == 'function' then
    return { start = h.start, ok = h.ok, warn = h.warn, error = h.error, info = h.info }
  end
  h = require('health')
  return { start = h.report_start, ok = h.report_ok, warn = h.report_warn, error = h.report_error, info = h.report_info }
end

-- The byte length of the UTF-8 sequence starting with `b` (as Neovim's
-- utf8len_tab: continuation and 0xFE/0xFF bytes count as 1).
local function seq_len(b)
  if b < 0xC0 then
    return 1
  elseif b < 0xE0 then
    return 2
  elseif b < 0xF0 then
    return 3
  elseif b < 0xF8 then
    return 4
  elseif b < 0xFC then
    return 5
  elseif b < 0xFE then
    return 6
  end
  return 1
end

-- Byte column -> LSP character in the negotiated position encoding, without
-- vim.str_utfindex (its signature changed in 0.11). A byte that does not
-- start a valid sequence counts as one character, as in Neovim.
function M.lsp_character(line, byte_col, encoding)
  local prefix = line:sub(1, byte_col)
  if encoding == 'utf-8' then
    return #prefix
  end
  local units, i, n = 0, 1, #prefix
  while i <= n do
    local len = seq_len(prefix:byte(i))
    for k = 1, len - 1 do
      local c = prefix:byte(i + k)
      if not c or c < 0x80 or c > 0xBF then
        len = 1 -- an invalid (or cut) sequence: this byte alone
        break
      end
    end
    if encoding == 'utf-16' and len >= 4 then
      units = units + 2
    else
      units = units + 1
    end
    i = i + len
  end
  return units
end

return M
