-- Typing through: typing exactly the next characters of the suggestion keeps
-- the rest on screen (same extmark, at the cursor) without a new request; a
-- different character hides it and a new suggestion follows the next pause.
-- Typing through a suggestion that is still streaming keeps what was shown
-- and asks again.
--
--   INKSTREAM_BINARY=... INKSTREAM_MODEL=<fixtures>/deep-scaled \
--     nvim --headless -u NONE -c "luafile tests/editor_plugins/test_typing_through.lua"
local H = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'helpers.lua')

local function final_ghost(buf)
  return H.wait_until(function()
    local g = H.ghost(buf)
    return g and not g.indicator:find('⋯') and g
  end, 30000, 5)
end

-- The first `n` characters (not bytes) of s.
local function chars(s, n)
  local out = {}
  for ch in s:gmatch('[%z\1-\127\194-\244][\128-\191]*') do
    if #out == n then
      break
    end
    table.insert(out, ch)
  end
  return out
end

H.run('nvim_plugin_typing_through', function()
  local dir = H.tempdir()
  local log = dir .. '/server.log'
  H.setup({ settings = { n = 3, max_tokens = 24, stop_at = 'none', stream_every_tokens = 1 } }, log)
  local buf = H.open(dir .. '/story.md', { 'It was the last ferry of the season, and' })
  local stats = require('inkstream').stats()
  H.keys('A')

  -- 1. A finished suggestion: type its first characters one by one.
  local g = final_ghost(buf)
  if not H.check(g ~= nil, 'a suggestion appeared') then
    return
  end
  local full, id, requests = g.text, g.id, stats.requests
  H.out('suggestion: ' .. vim.inspect(full))
  local typed = ''
  for _, ch in ipairs(chars(full, 6)) do
    H.type(H.literal(ch))
    typed = typed .. ch
    local now = H.ghost(buf)
    H.check(now ~= nil and now.text == full:sub(#typed + 1), 'after typing ' .. vim.inspect(typed) .. ' the rest is shown: ' .. vim.inspect(now and now.text))
    local r, c = H.cursor()
    H.check(now ~= nil and now.row == r and now.col == c, 'the rest is shown at the cursor')
    H.check(now ~= nil and now.id == id, 'the same extmark is updated')
  end
  H.sleep(700) -- longer than the idle delay: still no new request
  H.eq(stats.requests, requests, 'typing through asks the server nothing')
  H.check(H.ghost(buf) ~= nil and H.ghost(buf).text == full:sub(#typed + 1), 'the rest is still shown after a pause')
  H.eq(H.lines(buf)[1], 'It was the last ferry of the season, and' .. typed, 'the typed text is in the buffer')

  -- 2. A character that does not continue it: hidden, then a new suggestion.
  local next_ch = full:sub(#typed + 1, #typed + 1)
  H.type(next_ch == 'x' and 'y' or 'x')
  H.check(H.ghost(buf) == nil, 'a different character hides the suggestion')
  local g2 = final_ghost(buf)
  H.check(g2 ~= nil, 'a new suggestion follows the pause')
  H.eq(stats.requests, requests + 1, 'one new request')

  -- 3. Typing through while it streams (longer suggestions, so it streams
  -- for a while).
  local c = vim.lsp.get_client_by_id(require('inkstream.client').client_id(buf))
  local notify = vim.fn.has('nvim-0.11') == 1 and function(...) return c:notify(...) end or c.notify
  notify('workspace/didChangeConfiguration', { settings = { inkstream = { n = 8, max_tokens = 80 } } })
  H.keys('<C-]>')
  H.type(' The')
  local s = H.wait_until(function()
    local x = H.ghost(buf)
    return x and x.indicator:find('⋯') and #x.text >= 3 and x
  end, 30000, 1)
  if H.check(s ~= nil, 'a suggestion is streaming') then
    local ch = chars(s.text, 1)[1]
    local requests_before, cancelled_before = stats.requests, stats.cancelled
    H.type(H.literal(ch), 2)
    local now = H.ghost(buf)
    local r, c2 = H.cursor()
    H.check(now ~= nil and vim.startswith(s.text, ch .. now.text), 'while streaming, typing through keeps the rest: ' .. vim.inspect(now and now.text))
    H.check(now ~= nil and now.row == r and now.col == c2, 'while streaming, the rest is shown at the cursor')
    if stats.cancelled > cancelled_before then
      -- The key landed while it streamed: that request stopped, and after
      -- the idle delay a new one asks again.
      local answers = #stats.updates_per_suggestion
      H.check(H.wait_until(function()
        return stats.requests == requests_before + 1 and #stats.updates_per_suggestion > answers
      end, 30000), 'a new request after typing through a streaming suggestion, answered')
      H.eq(stats.requests, requests_before + 1, 'exactly one new request')
      H.check(H.ghost(buf) ~= nil, 'its suggestion is shown')
      H.out('typed through a suggestion while it was streaming')
    else
      H.out('the suggestion had finished when the key landed (a fast machine)')
    end
  end

  local errors, all = H.message_errors()
  H.check(#errors == 0, ':messages has no errors: ' .. all)
end)
