-- The language server, through Neovim's own LSP client: one `inkstream lsp`
-- per root folder, shared by every buffer under it. This module starts and
-- attaches it and receives the server's own notifications; what to do with a
-- streamed suggestion is suggestion.lua's business.
local config = require('inkstream.config')
local compat = require('inkstream.compat')

local M = {}

local state = {
  roots = {}, -- root folder -> client id (0.7 has no vim.lsp.start to reuse clients)
  buffers = {}, -- bufnr -> client id
  status = {}, -- client id -> the last inkstream/status notification (+ time)
  notified = {}, -- messages already shown once
  exited = {}, -- root folder -> true once a server there exited (next start is a restart)
  restarts = {}, -- times (ms) of recent restarts, for the restart limit
}

-- A server that keeps dying is not restarted more often than this.
M.MAX_RESTARTS = 3
M.RESTART_WINDOW_MS = 60000

M.NAME = 'inkstream'

-- Shows a real problem once per session (so :messages does not fill up).
function M.notify_once(msg, level)
  if state.notified[msg] then
    return
  end
  state.notified[msg] = true
  vim.notify(msg, level or vim.log.levels.WARN)
end

local function find_root(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  local dir = name ~= '' and vim.fn.fnamemodify(name, ':p:h') or vim.fn.getcwd()
  local markers = config.get().root_markers
  local d = dir
  while d and d ~= '' do
    for _, marker in ipairs(markers) do
      if (vim.uv or vim.loop).fs_stat(d .. '/' .. marker) then
        return d
      end
    end
    local parent = vim.fn.fnamemodify(d, ':h')
    if parent == d then
      break
    end
    d = parent
  end
  return dir
end

local handlers = {
  ['inkstream/partialCompletion'] = function(_, params, ctx)
    require('inkstream.suggestion').on_partial(params, ctx.client_id)
  end,
  ['inkstream/status'] = function(_, params, ctx)
    if type(params) == 'table' then
      local s = vim.deepcopy(params)
      s.time = os.time()
      state.status[ctx.client_id] = s
    end
  end,
}

local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.experimental = caps.experimental or {}
  caps.experimental.inkstream = { partialCompletion = config.get().streaming }
  return caps
end

local function client_config(root)
  local opts = config.get()
  return {
    name = M.NAME,
    cmd = config.command(),
    root_dir = root,
    init_options = config.init_options(),
    capabilities = capabilities(),
    handlers = handlers,
    flags = { debounce_text_changes = opts.debounce_text_changes },
    -- Runs in a libuv callback (no API calls here: they are scheduled).
    on_exit = function(code, signal, client_id)
      for r, id in pairs(state.roots) do
        if id == client_id then
          state.roots[r] = nil
          state.exited[r] = true
        end
      end
      state.status[client_id] = nil
      -- Its buffers have no server now: the next request re-attaches them
      -- (starting a new one).
      local bufs = {}
      for b, id in pairs(state.buffers) do
        if id == client_id then
          state.buffers[b] = nil
          table.insert(bufs, b)
        end
      end
      vim.schedule(function()
        for _, b in ipairs(bufs) do
          pcall(function()
            require('inkstream').on_server_exit(b)
          end)
        end
        if vim.v.exiting == vim.NIL and not (code == 0 and (signal == 0 or signal == nil)) then
          vim.notify(
            string.format('inkstream: server exited (code %s, signal %s)', tostring(code), tostring(signal)),
            vim.log.levels.WARN
          )
        end
      end)
    end,
  }
end

local function now_ms()
  return (vim.uv or vim.loop).hrtime() / 1e6
end

-- Whether one more restart is allowed now (and counts it when it is).
local function allow_restart()
  local t = now_ms()
  local recent = {}
  for _, at in ipairs(state.restarts) do
    if t - at < M.RESTART_WINDOW_MS then
      table.insert(recent, at)
    end
  end
  state.restarts = recent
  if #recent >= M.MAX_RESTARTS then
    return false
  end
  table.insert(state.restarts, t)
  return true
end

local function alive(id)
  local c = compat.get_client(id)
  return c ~= nil and not compat.is_stopped(c)
end

-- Starts (or reuses) the server for the buffer's root and attaches the buffer.
-- Returns the client id, or nil when the server cannot start.
function M.attach(bufnr)
  if state.buffers[bufnr] and alive(state.buffers[bufnr]) then
    return state.buffers[bufnr]
  end
  local cmd = config.command()
  if vim.fn.executable(cmd[1]) ~= 1 then
    M.notify_once(
      string.format(
        'inkstream: server binary %q not found; set `cmd` in setup() or see :checkhealth inkstream',
        cmd[1]
      ),
      vim.log.levels.ERROR
    )
    return nil
  end
  local root = find_root(bufnr)
  local id = state.roots[root]
  if not (id and alive(id)) then
    if state.exited[root] then
      -- A restart (the server there exited): limited, so a server that
      -- dies at once is not started again and again.
      local limit_msg = string.format(
        'inkstream: the server exited %d times within a minute; not restarting it for now (see its log)',
        M.MAX_RESTARTS
      )
      if not allow_restart() then
        M.notify_once(limit_msg)
        return nil
      end
      state.notified[limit_msg] = nil
    end
    if vim.lsp.start then
      -- 0.8+: starts or reuses a client (same name and root) and attaches
      -- (vim.lsp.start_client is deprecated from 0.11).
      id = vim.lsp.start(client_config(root), { bufnr = bufnr })
    else
      id = vim.lsp.start_client(client_config(root))
    end
    if not id then
      M.notify_once('inkstream: the language server did not start: ' .. table.concat(cmd, ' '), vim.log.levels.ERROR)
      return nil
    end
    state.roots[root] = id
  end
  if not vim.lsp.buf_is_attached(bufnr, id) then
    vim.lsp.buf_attach_client(bufnr, id)
  end
  state.buffers[bufnr] = id
  return id
end

function M.detach(bufnr)
  state.buffers[bufnr] = nil
end

-- The buffer's client once it has finished `initialize`, else nil.
function M.ready_client(bufnr)
  local c = compat.get_client(state.buffers[bufnr])
  if c and c.initialized and not compat.is_stopped(c) then
    return c
  end
  return nil
end

-- The buffer's server is still starting (initialize not answered yet).
function M.starting(bufnr)
  local c = compat.get_client(state.buffers[bufnr])
  return c ~= nil and not c.initialized and not compat.is_stopped(c)
end

function M.client_id(bufnr)
  return state.buffers[bufnr]
end

-- Every running client this plugin started.
function M.clients()
  local out, seen = {}, {}
  for _, id in pairs(state.roots) do
    if not seen[id] and alive(id) then
      seen[id] = true
      table.insert(out, compat.get_client(id))
    end
  end
  for _, id in pairs(state.buffers) do
    if not seen[id] and alive(id) then
      seen[id] = true
      table.insert(out, compat.get_client(id))
    end
  end
  table.sort(out, function(a, b)
    return a.id < b.id
  end)
  return out
end

function M.last_status(client_id)
  return state.status[client_id]
end

-- Synchronous workspace/executeCommand (for :InkstreamStatus).
function M.execute_sync(client, command, arguments, timeout_ms)
  local done, result, err = false, nil, nil
  local ok = compat.request(client, 'workspace/executeCommand', { command = command, arguments = arguments }, function(e, r)
    done, result, err = true, r, e
  end)
  if not ok then
    return nil, 'the server has stopped'
  end
  vim.wait(timeout_ms or 2000, function()
    return done
  end, 10)
  if not done then
    return nil, 'no answer'
  end
  return result, err
end

return M
