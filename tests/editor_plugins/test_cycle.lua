-- Alternatives and dismissing, with auto-trigger off: nothing appears by
-- itself; <M-\> asks; <M-]> / <M-[> cycle through the alternatives (the
-- indicator shows i/N, wrapping around); <C-]> dismisses without touching the
-- buffer; the alternative accepted is the one on screen.
--
--   INKSTREAM_BINARY=... INKSTREAM_MODEL=<fixtures>/tiny \
--     nvim --headless -u NONE -c "luafile tests/editor_plugins/test_cycle.lua"
local H = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'helpers.lua')

local function final_ghost(buf)
  return H.wait_until(function()
    local g = H.ghost(buf)
    return g and not g.indicator:find('⋯') and g
  end, 30000, 5)
end

H.run('nvim_plugin_cycle', function()
  local dir = H.tempdir()
  local log = dir .. '/server.log'
  H.setup({ auto_trigger = false, settings = { n = 3, max_tokens = 12 } }, log)
  local line = 'The orchard was quiet after the storm, and'
  local buf = H.open(dir .. '/story.md', { line })
  H.keys('A')
  H.type(' the')
  H.sleep(800) -- well past the idle delay
  H.check(H.ghost(buf) == nil, 'auto-trigger off: no suggestion by itself')
  H.eq(require('inkstream').stats().requests, 0, 'auto-trigger off: no request')

  H.keys('<M-\\>')
  local g = final_ghost(buf)
  if not H.check(g ~= nil, '<M-\\> brings a suggestion') then
    return
  end
  local n = tonumber(g.indicator:match('/(%d+)'))
  H.out(string.format('%s alternatives; indicator %q', tostring(n), g.indicator))
  if not H.check(n ~= nil and n >= 2, 'several alternatives, shown as i/N') then
    return
  end
  local texts = { g.text }
  H.eq(g.indicator, ' 1/' .. n, 'first alternative first')
  for i = 2, n do
    H.keys('<M-]>')
    local gi = H.ghost(buf)
    H.eq(gi and gi.indicator, ' ' .. i .. '/' .. n, '<M-]> goes to alternative ' .. i)
    texts[i] = gi and gi.text
    H.eq(gi and gi.id, g.id, 'cycling updates the same extmark')
  end
  for i = 1, n do
    for j = i + 1, n do
      H.check(texts[i] ~= texts[j], 'alternatives differ: ' .. vim.inspect(texts[i]))
    end
  end
  H.keys('<M-]>')
  H.eq(H.ghost(buf).indicator, ' 1/' .. n, '<M-]> wraps around to the first')
  H.eq(H.ghost(buf).text, texts[1], 'first text again')
  H.keys('<M-[>')
  H.eq(H.ghost(buf).indicator, ' ' .. n .. '/' .. n, '<M-[> wraps back to the last')
  H.eq(H.ghost(buf).text, texts[n], 'last text')
  H.keys('<M-[>')
  H.eq(H.ghost(buf).text, texts[n - 1], '<M-[> goes back one')

  -- Dismiss: nothing shown, buffer untouched, still in insert mode.
  H.keys('<C-]>')
  H.check(H.ghost(buf) == nil, '<C-]> dismisses')
  H.eq(H.lines(buf)[1], line .. ' the', 'dismissing leaves the buffer as it was')
  H.eq(H.mode(), 'i', 'still in insert mode')
  H.sleep(500)
  H.check(H.ghost(buf) == nil, 'it stays dismissed')

  -- Accept the second alternative: that is the text inserted.
  H.keys('<M-\\>')
  local g2 = final_ghost(buf)
  H.check(g2 ~= nil, 'asked again')
  H.keys('<M-]>')
  local second = H.ghost(buf).text
  H.keys('<Tab>')
  H.eq(H.lines(buf)[1], line .. ' the' .. second, 'the alternative on screen is the one accepted')
  local logged = H.wait_until(function()
    return H.read(log):match('suggestion accepted: (%b[])')
  end, 5000)
  H.out('server log: accepted ' .. tostring(logged))
  H.check(logged ~= nil and logged:find('"index":1') ~= nil, 'the server was told alternative index 1 was taken')

  local errors, all = H.message_errors()
  H.check(#errors == 0, ':messages has no errors: ' .. all)
end)
