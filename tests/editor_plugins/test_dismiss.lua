-- Dismissing stays dismissed: typing through a suggestion that is still
-- streaming schedules a new request after the idle delay; <C-]> in that
-- window hides the suggestion and stops that request too, so nothing comes
-- back until the writer types again. Same after accepting part of a
-- streaming suggestion.
--
--   INKSTREAM_BINARY=... INKSTREAM_MODEL=<fixtures>/deep-scaled \
--     nvim --headless -u NONE -c "luafile tests/editor_plugins/test_dismiss.lua"
local H = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'helpers.lua')

-- A suggestion still streaming, with at least `words` words shown (so that
-- accepting one word leaves some of it on screen).
local function streaming(buf, words)
  return H.wait_until(function()
    local x = H.ghost(buf)
    if not (x and x.indicator:find('⋯') and #x.text >= 3) then
      return false
    end
    local _, count = x.text:gsub('%S+', '')
    return count >= (words or 1) and x
  end, 30000, 1)
end

-- After a dismissal: for well over the idle delay, no ghost text and no
-- new request.
local function stays_dismissed(buf, stats, name)
  local requests = stats.requests
  H.check(H.ghost(buf) == nil, name .. ': the ghost text is gone at once')
  local t0, came_back = H.now(), false
  H.wait_until(function()
    came_back = came_back or H.ghost(buf) ~= nil
    return H.now() - t0 > 1500
  end, 5000, 20)
  H.check(not came_back, name .. ': no ghost text comes back')
  H.eq(stats.requests, requests, name .. ': no new request after the dismissal')
  H.check(H.ghost(buf) == nil, name .. ': still nothing shown after 1.5 s')
end

H.run('nvim_plugin_dismiss', function()
  local dir = H.tempdir()
  local log = dir .. '/server.log'
  H.setup({ settings = { n = 3, max_tokens = 40, stop_at = 'none', stream_every_tokens = 1 } }, log)
  local buf = H.open(dir .. '/story.md', { 'It was the last ferry of the season, and' })
  local stats = require('inkstream').stats()
  H.keys('A')

  -- 1. Type through a streaming suggestion, then <C-]>.
  local g = streaming(buf)
  if not H.check(g ~= nil, 'a suggestion is streaming') then
    return
  end
  H.type(H.literal(g.text:sub(1, 1)), 2)
  H.out('after typing through: ' .. vim.inspect(H.ghost(buf) and H.ghost(buf).text))
  H.keys('<C-]>', 20)
  stays_dismissed(buf, stats, 'typing through, then <C-]>')

  -- 2. Accept a word of a streaming suggestion, then <C-]>.
  H.type(' The')
  g = streaming(buf, 2)
  if H.check(g ~= nil, 'a new suggestion is streaming after typing') then
    H.keys('<M-Right>', 20)
    H.keys('<C-]>', 20)
    stays_dismissed(buf, stats, 'accepting a word, then <C-]>')
  end

  -- 3. Typing again asks again.
  H.type(' x')
  H.check(H.wait_until(function()
    return H.ghost(buf)
  end, 30000) ~= nil, 'typing again brings a new suggestion')

  local errors, all = H.message_errors()
  H.check(#errors == 0, ':messages has no errors: ' .. all)
end)
