-- :checkhealth inkstream — the binary is found, the server starts, the model
-- loads and completes. The server check is a real, separate session (spawned
-- and stopped here) so it also works before any prose buffer is open.
local config = require('inkstream.config')
local compat = require('inkstream.compat')

local M = {}

local function frame(msg)
  local body = vim.fn.json_encode(msg)
  return 'Content-Length: ' .. #body .. '\r\n\r\n' .. body
end

-- Runs initialize + a one-token completion against a fresh server.
-- Returns { ok = bool, ms = load+complete time, error = msg, messages = {...} }.
local function probe(cmd, timeout_ms)
  local buf, responses, messages = '', {}, {}
  local function on_stdout(_, data)
    buf = buf .. table.concat(data, '\n')
    while true do
      local header_end = buf:find('\r\n\r\n', 1, true)
      if not header_end then
        return
      end
      local len = tonumber(buf:sub(1, header_end):match('Content%-Length: *(%d+)'))
      if not len or #buf < header_end + 3 + len then
        return
      end
      local body = buf:sub(header_end + 4, header_end + 3 + len)
      buf = buf:sub(header_end + 4 + len)
      local ok, msg = pcall(vim.fn.json_decode, body)
      if ok and type(msg) == 'table' then
        if msg.id ~= nil and msg.method == nil then
          responses[msg.id] = msg
        elseif msg.method == 'window/showMessage' and type(msg.params) == 'table' then
          table.insert(messages, tostring(msg.params.message))
        end
      end
    end
  end
  local ok_start, job = pcall(vim.fn.jobstart, cmd, { on_stdout = on_stdout, stdout_buffered = false })
  if not ok_start or job <= 0 then
    return { ok = false, error = 'could not start: ' .. table.concat(cmd, ' ') }
  end
  local uv = vim.uv or vim.loop
  local started = uv.hrtime()
  local init = config.init_options()
  init.streaming = false
  init.n, init.max_tokens = 1, 1
  local uri = 'file:///inkstream-health-check.md'
  vim.fn.chansend(job, frame({ jsonrpc = '2.0', id = 1, method = 'initialize', params = {
    processId = vim.fn.getpid(), rootUri = vim.NIL, capabilities = vim.empty_dict(), initializationOptions = init } }))
  vim.fn.chansend(job, frame({ jsonrpc = '2.0', method = 'initialized', params = vim.empty_dict() }))
  vim.fn.chansend(job, frame({ jsonrpc = '2.0', method = 'textDocument/didOpen', params = { textDocument = {
    uri = uri, languageId = 'markdown', version = 1, text = 'The weather today is' } } }))
  vim.fn.chansend(job, frame({ jsonrpc = '2.0', id = 2, method = 'textDocument/inlineCompletion', params = {
    textDocument = { uri = uri }, position = { line = 0, character = 20 }, context = { triggerKind = 1 } } }))
  local answered = vim.wait(timeout_ms, function()
    return responses[2] ~= nil
  end, 20)
  local ms = (uv.hrtime() - started) / 1e6
  pcall(vim.fn.chansend, job, frame({ jsonrpc = '2.0', id = 3, method = 'shutdown' }))
  pcall(vim.fn.chansend, job, frame({ jsonrpc = '2.0', method = 'exit' }))
  vim.wait(1000, function()
    return vim.fn.jobwait({ job }, 0)[1] ~= -1
  end, 20)
  pcall(vim.fn.jobstop, job)
  local result = { ms = ms, messages = messages, initialized = responses[1] ~= nil and responses[1].result ~= nil }
  if not answered then
    result.error = responses[1] and 'no completion within ' .. timeout_ms .. ' ms' or 'the server did not answer initialize'
  elseif responses[2].error then
    result.error = tostring(responses[2].error.message)
  else
    result.ok = true
  end
  return result
end

function M.check()
  local h = compat.health()
  h.start('inkstream')
  local v = vim.version()
  h.info(string.format('Neovim %d.%d.%d: ghost text drawn as %s', v.major, v.minor, v.patch,
    (config.get().render ~= 'overlay' and compat.inline_virt_text()) and 'inline virtual text' or 'an overlay'))
  if not require('inkstream').is_setup() then
    h.warn("setup() has not been called: add require('inkstream').setup{} to your configuration")
  end
  local cmd = config.command()
  if vim.fn.executable(cmd[1]) ~= 1 then
    h.error(string.format('server binary %q not found', cmd[1]), {
      'Build it (make build) and put build/cli/inkstream on your PATH,',
      "or give its path: require('inkstream').setup{ cmd = { '/path/to/inkstream', 'lsp' } }",
    })
    return
  end
  local version = vim.trim(vim.fn.system({ cmd[1], '--version' }))
  h.ok(string.format('server binary: %s (%s)', vim.fn.exepath(cmd[1]), version))
  local model = config.get().model or config.get().settings.model
  h.info('model: ' .. (model and model ~= '' and model or "the server's default (models/default)"))

  local r = probe(cmd, 60000)
  if r.initialized then
    h.ok('the server starts (' .. table.concat(cmd, ' ') .. ')')
  else
    h.error('the server does not start: ' .. tostring(r.error), { 'Run it by hand: ' .. table.concat(cmd, ' ') .. ' --log-level debug' })
  end
  for _, m in ipairs(r.messages) do
    h.warn('server: ' .. m)
  end
  if r.ok then
    h.ok(string.format('the model loads and completes (%.0f ms for start, load and one token)', r.ms))
  elseif r.initialized then
    h.error('the model does not load: ' .. tostring(r.error), {
      "Point the plugin at a model folder: require('inkstream').setup{ model = '/path/to/model' }",
    })
  end

  local clients = require('inkstream.client').clients()
  if #clients > 0 then
    for _, c in ipairs(clients) do
      h.ok(string.format('running: server #%d for %s', c.id, tostring(c.config and c.config.root_dir)))
    end
  else
    h.info('no server running in this session yet (one starts with the first ' ..
      table.concat(config.get().filetypes, '/') .. ' buffer)')
  end
  if compat.has_builtin_inline_completion() then
    h.info('This Neovim also ships vim.lsp.inline_completion; where it is enabled for a buffer, ' ..
      'the plugin leaves the buffer to it (see :h inkstream-builtin).')
  end
end

return M
