-- Shared harness of the Neovim plugin tests (headless Neovim 0.7.2+, the real
-- server, a fixture model).
--
-- A test is a coroutine: it types with nvim_input and then *yields* (sleep /
-- wait_until), so Neovim's main loop really runs insert mode in between —
-- keys are read, TextChangedI / CursorMovedI fire, LSP messages arrive — just
-- as when a person types. (vim.wait would not read typed keys.)
--
-- Environment: INKSTREAM_BINARY (the inkstream executable), INKSTREAM_MODEL
-- (a model folder). Run:
--   INKSTREAM_BINARY=... INKSTREAM_MODEL=... nvim --headless -u NONE -c "luafile test_x.lua"
local H = {}

local uv = vim.loop

H.here = debug.getinfo(1, 'S').source:sub(2):match('(.*/)')
H.repo = vim.fn.fnamemodify(H.here .. '../..', ':p'):gsub('/$', '')
H.plugin_dir = H.repo .. '/editor_plugins/nvim'
H.binary = os.getenv('INKSTREAM_BINARY') or (H.repo .. '/build/cli/inkstream')
H.model = os.getenv('INKSTREAM_MODEL') or (H.repo .. '/build/fixtures/tiny')

H.passed, H.failed = 0, 0
H.name = 'nvim plugin test'

function H.out(s)
  io.stdout:write(s .. '\n')
end

function H.check(cond, what)
  if cond then
    H.passed = H.passed + 1
  else
    H.failed = H.failed + 1
    io.stderr:write('FAIL: ' .. what .. '\n')
  end
  return cond
end

-- Counts only failures (for checks made at every sample).
function H.expect(cond, what)
  if not cond then
    H.check(false, what)
  end
  return cond
end

function H.eq(got, want, what)
  return H.check(got == want, string.format('%s: got %s, want %s', what, vim.inspect(got), vim.inspect(want)))
end

local function finish()
  H.out(string.format('%s: %d passed, %d failed', H.name, H.passed, H.failed))
  io.stdout:flush()
  io.stderr:flush()
  if H.failed == 0 and H.passed > 0 then
    vim.cmd('qall!')
  else
    vim.cmd('cquit!')
  end
end

local co
local function resume()
  if co and coroutine.status(co) == 'suspended' then
    local ok, err = coroutine.resume(co)
    if not ok then
      H.check(false, 'error: ' .. tostring(err) .. '\n' .. debug.traceback(co))
      finish()
    elseif coroutine.status(co) == 'dead' then
      finish()
    end
  end
end

-- Lets Neovim run for `ms` (keys, autocommands, timers, LSP messages).
function H.sleep(ms)
  vim.defer_fn(resume, ms)
  coroutine.yield()
end

function H.now()
  return uv.hrtime() / 1e6
end

-- Polls `cond` every `interval` ms until it is true or `timeout` ms passed.
function H.wait_until(cond, timeout, interval)
  local deadline = H.now() + (timeout or 20000)
  while true do
    local v = cond()
    if v then
      return v
    end
    if H.now() > deadline then
      return nil
    end
    H.sleep(interval or 10)
  end
end

-- Types keys as the user would: one key at a time with a pause after each
-- (so every key gets its own TextChangedI), then waits until Neovim has read
-- them all.
function H.type(keys, pause)
  local i = 1
  while i <= #keys do
    local key = keys:sub(i, i)
    if key == '<' then
      local close = keys:find('>', i, true)
      key = keys:sub(i, close)
      i = close + 1
    else
      -- a whole UTF-8 character
      local len = key:byte() >= 0xF0 and 4 or key:byte() >= 0xE0 and 3 or key:byte() >= 0xC0 and 2 or 1
      key = keys:sub(i, i + len - 1)
      i = i + len
    end
    vim.api.nvim_input(key)
    H.last_key_at = H.now()
    H.sleep(pause or 15)
  end
end

-- `s` as keys that type it literally (nvim_input reads "<" as a key name).
function H.literal(s)
  return (s:gsub('<', '<lt>'))
end

-- Sends keys in one go (a mapping, <Esc>, ...) and lets Neovim process them.
function H.keys(keys, settle)
  vim.api.nvim_input(keys)
  H.sleep(settle or 50)
end

-- Runs the test body as a coroutine with a global time limit.
function H.run(name, body, limit_ms)
  H.name = name
  vim.o.showmode = false -- no "-- INSERT --" on stdout
  vim.o.more = false
  vim.o.swapfile = false
  vim.o.shadafile = 'NONE' -- tests may run in parallel: no shared shada file
  -- A wide screen, so no suggestion is wrapped into extra virtual lines and
  -- H.ghost() reads back the exact text (test_streaming checks wrapping).
  vim.o.columns = 2000
  co = coroutine.create(body)
  vim.defer_fn(function()
    H.check(false, 'time limit reached')
    finish()
  end, limit_ms or 120000)
  vim.schedule(resume)
end

-- A fresh temporary folder for the test's files.
function H.tempdir()
  local d = vim.fn.tempname()
  vim.fn.mkdir(d, 'p')
  return d
end

-- Loads the plugin from this repository and sets it up against the binary and
-- model of the environment; the server logs to `log` at debug level.
function H.setup(opts, log)
  vim.opt.runtimepath:prepend(H.plugin_dir)
  opts = opts or {}
  opts.cmd = opts.cmd or { H.binary, 'lsp' }
  opts.args = opts.args or { '--log-file', log, '--log-level', 'debug' }
  opts.model = opts.model or H.model
  require('inkstream').setup(opts)
end

-- Opens `path` with `lines` as a markdown buffer (attaching the plugin) and
-- waits for the server to be initialized.
function H.open(path, lines)
  vim.fn.writefile(lines, path)
  vim.cmd('edit ' .. vim.fn.fnameescape(path))
  vim.bo.filetype = 'markdown'
  local buf = vim.api.nvim_get_current_buf()
  local ok = H.wait_until(function()
    local id = require('inkstream.client').client_id(buf)
    local c = id and vim.lsp.get_client_by_id(id)
    return c and c.initialized
  end, 30000, 20)
  H.check(ok, 'the server initialized')
  return buf
end

-- What the plugin draws: { text = suggestion (lines joined with \n),
-- indicator = the trailing " i/N ⋯" part, row, col } or nil.
function H.ghost(buf)
  local ns = vim.api.nvim_create_namespace('inkstream')
  local marks = vim.api.nvim_buf_get_extmarks(buf or 0, ns, 0, -1, { details = true })
  if #marks == 0 then
    return nil
  end
  H.expect(#marks == 1, 'one extmark per buffer, got ' .. #marks)
  local m = marks[1]
  local d = m[4]
  local text, indicator = {}, ''
  local first = {}
  for _, chunk in ipairs(d.virt_text or {}) do
    if chunk[2] == 'InkstreamSuggestion' then
      table.insert(first, chunk[1])
    elseif chunk[2] == 'InkstreamIndicator' then
      indicator = indicator .. chunk[1]
    end
  end
  table.insert(text, table.concat(first))
  for _, vl in ipairs(d.virt_lines or {}) do
    local parts = {}
    for _, chunk in ipairs(vl) do
      if chunk[2] == 'InkstreamSuggestion' then
        table.insert(parts, chunk[1])
      elseif chunk[2] == 'InkstreamIndicator' then
        indicator = indicator .. chunk[1]
      end
    end
    table.insert(text, table.concat(parts))
  end
  return { id = m[1], row = m[2], col = m[3], text = table.concat(text, '\n'), indicator = indicator }
end

function H.lines(buf)
  return vim.api.nvim_buf_get_lines(buf or 0, 0, -1, false)
end

function H.cursor()
  local c = vim.api.nvim_win_get_cursor(0)
  return c[1] - 1, c[2]
end

function H.mode()
  return vim.api.nvim_get_mode().mode
end

-- Errors in :messages (E123: ..., Error ..., or a Lua traceback).
function H.message_errors()
  local msgs = vim.fn.execute('messages')
  local bad = {}
  for line in msgs:gmatch('[^\n]+') do
    if line:match('^E%d+:') or line:match('[Ee]rror') or line:match('stack traceback') or line:match('inkstream:') then
      table.insert(bad, line)
    end
  end
  return bad, msgs
end

-- Reads the server log (for cancellations and the like).
function H.read(path)
  local f = io.open(path, 'r')
  if not f then
    return ''
  end
  local s = f:read('*a')
  f:close()
  return s
end

return H
