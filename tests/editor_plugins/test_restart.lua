-- The server dies (SIGKILL): one warning "inkstream: server exited (code X,
-- signal Y)", and the next trigger in the buffer starts a new server and
-- brings a suggestion back.
--
--   INKSTREAM_BINARY=... INKSTREAM_MODEL=<fixtures>/tiny \
--     nvim --headless -u NONE -c "luafile tests/editor_plugins/test_restart.lua"
local H = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'helpers.lua')

-- The pid of the buffer's server: from the client's rpc (0.7-0.9), else by
-- its unique --log-file path.
local function server_pid(buf, log)
  local c = vim.lsp.get_client_by_id(require('inkstream.client').client_id(buf))
  local rpc = c and rawget(c, 'rpc')
  if type(rpc) == 'table' and type(rpc.pid) == 'number' then
    return rpc.pid
  end
  local out = vim.fn.systemlist({ 'pgrep', '-f', '--', log })
  return tonumber(out[1])
end

H.run('nvim_plugin_restart', function()
  local dir = H.tempdir()
  local log = dir .. '/server.log'
  H.setup({ auto_trigger = false, settings = { n = 2, max_tokens = 8 } }, log)
  local buf = H.open(dir .. '/story.md', { 'The castle stood on the hill, and' })
  local client = require('inkstream.client')
  local first_id = client.client_id(buf)

  H.keys('A')
  H.keys('<M-\\>')
  H.check(H.wait_until(function()
    return H.ghost(buf)
  end, 30000) ~= nil, 'a suggestion before the crash')
  H.keys('<C-]>')

  local pid = server_pid(buf, log)
  if not H.check(pid ~= nil, 'found the server process') then
    return
  end
  H.out('killing the server, pid ' .. pid)
  vim.loop.kill(pid, 9)
  H.check(H.wait_until(function()
    return client.client_id(buf) == nil
  end, 10000) ~= nil, 'the plugin noticed the exit')
  H.check(not require('inkstream').attached(buf), 'the buffer is no longer attached')
  H.sleep(100)

  -- The next trigger starts a new server and gets a suggestion.
  H.keys('<M-\\>')
  local g = H.wait_until(function()
    return H.ghost(buf)
  end, 30000)
  H.check(g ~= nil, 'after the crash, the trigger brings a suggestion back')
  local new_id = client.client_id(buf)
  H.check(new_id ~= nil and new_id ~= first_id, 'a new server was started')
  H.eq(#client.clients(), 1, 'one running server')
  H.check(require('inkstream').attached(buf), 'the buffer is attached again')
  H.keys('<Tab>')
  H.check(#H.lines(buf)[1] > #'The castle stood on the hill, and', 'its suggestion can be accepted')

  -- One warning for the exit, nothing else.
  local errors, all = H.message_errors()
  local exits, other = 0, {}
  for _, e in ipairs(errors) do
    if e:match('^inkstream: server exited %(code %S+, signal %S+%)$') then
      exits = exits + 1
    else
      table.insert(other, e)
    end
  end
  H.eq(exits, 1, 'one "inkstream: server exited" warning')
  H.check(#other == 0, ':messages has no other errors: ' .. all)
end)
