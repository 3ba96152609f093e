-- Against a server that does not stream (streaming = false: the server sends
-- no inkstream/partialCompletion), suggestions still appear with the final
-- answer and can be accepted.
--
--   INKSTREAM_BINARY=... INKSTREAM_MODEL=<fixtures>/tiny \
--     nvim --headless -u NONE -c "luafile tests/editor_plugins/test_no_streaming.lua"
local H = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'helpers.lua')

H.run('nvim_plugin_no_streaming', function()
  local dir = H.tempdir()
  local log = dir .. '/server.log'
  H.setup({ streaming = false, settings = { n = 2, max_tokens = 10 } }, log)
  local line = 'Snow had covered the road by morning, so'
  local buf = H.open(dir .. '/story.md', { line })
  local stats = require('inkstream').stats()
  H.keys('A')
  H.type(' we')
  local g = H.wait_until(function()
    return H.ghost(buf)
  end, 30000)
  if not H.check(g ~= nil, 'a suggestion appeared') then
    return
  end
  H.out(string.format('suggestion %q after %.0f ms (request to draw)', g.text, stats.last_first_ghost_ms or -1))
  H.eq(stats.partial_updates, 0, 'no streamed updates')
  H.check(g.indicator:find('⋯') == nil, 'no streaming indicator')
  local c = vim.lsp.get_client_by_id(require('inkstream.client').client_id(buf))
  local info = require('inkstream.client').execute_sync(c, 'inkstream.status', {}, 5000)
  H.eq(info and info.streaming, false, 'the server was not asked to stream')
  H.keys('<Tab>')
  H.eq(H.lines(buf)[1], line .. ' we' .. g.text, 'accepted')
  local errors, all = H.message_errors()
  H.check(#errors == 0, ':messages has no errors: ' .. all)
end)
