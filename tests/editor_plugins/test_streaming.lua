-- Streaming: typing prose in insert mode brings ghost text after the idle
-- delay, and while the server streams (inkstream/partialCompletion) the text
-- drawn grows, in place (same extmark id), with a "⋯" indicator and "i/N";
-- the final answer ends the indicator. Prints, per suggestion, the time from
-- the idle trigger to the first ghost character and the number of streamed
-- updates.
--
--   INKSTREAM_BINARY=... INKSTREAM_MODEL=<fixtures>/deep-scaled \
--     nvim --headless -u NONE -c "luafile tests/editor_plugins/test_streaming.lua"
local H = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'helpers.lua')

local IDLE = 300

-- Types `words`, then samples the ghost text every ~2 ms until the final
-- answer (no indicator). Returns what was seen.
local function one_suggestion(buf, words)
  local stats = require('inkstream').stats()
  local before_updates = #stats.updates_per_suggestion
  H.type(words)
  local typed_at = H.last_key_at
  local seen = { texts = {}, ids = {}, streaming_indicator = false }
  local first_at
  local final = H.wait_until(function()
    local g = H.ghost(buf)
    if g and g.text ~= '' then
      first_at = first_at or H.now()
      seen.ids[g.id] = true
      local streaming = g.indicator:find('⋯') ~= nil
      if streaming then
        seen.streaming_indicator = true
        if seen.texts[#seen.texts] ~= g.text then
          table.insert(seen.texts, g.text)
        end
      end
      local r, c = H.cursor()
      H.expect(g.row == r and g.col == c, 'ghost text is drawn at the cursor')
      if not streaming and #stats.updates_per_suggestion > before_updates then
        return g
      end
    end
  end, 40000, 2)
  seen.final = final
  seen.first_ms = first_at and (first_at - typed_at - IDLE) or nil
  seen.updates = stats.updates_per_suggestion[#stats.updates_per_suggestion]
  seen.plugin_first_ms = stats.last_first_ghost_ms
  return seen
end

H.run('nvim_plugin_streaming', function()
  local dir = H.tempdir()
  local log = dir .. '/server.log'
  H.setup({
    idle_delay = IDLE,
    settings = { n = 3, max_tokens = 72, stop_at = 'none', stream_every_tokens = 2 },
  }, log)
  local buf = H.open(dir .. '/story.md', { 'The lighthouse keeper had not spoken to anyone in weeks.' })
  H.keys('A')
  local rounds = { ' When the boat came', ' The sea', ' She said' }
  local grew, total_updates = 0, 0
  for i, words in ipairs(rounds) do
    local seen = one_suggestion(buf, words)
    if not H.check(seen.final ~= nil, 'round ' .. i .. ': a final suggestion') then
      break
    end
    H.out(
      string.format(
        'round %d: first ghost character %.0f ms after the idle trigger (plugin: %.0f ms from request to first draw); %d streamed updates (%d distinct texts sampled); final %d chars, indicator %q',
        i,
        seen.first_ms or -1,
        seen.plugin_first_ms or -1,
        seen.updates or -1,
        #seen.texts,
        #seen.final.text,
        seen.final.indicator
      )
    )
    H.check(seen.streaming_indicator, 'round ' .. i .. ': the streaming indicator was shown')
    H.check((seen.updates or 0) >= 2, 'round ' .. i .. ': several streamed updates')
    H.eq(vim.tbl_count(seen.ids), 1, 'round ' .. i .. ': one extmark, updated in place')
    -- Each sampled text extends the previous one and the final text.
    for k = 2, #seen.texts do
      H.expect(vim.startswith(seen.texts[k], seen.texts[k - 1]), 'streamed text grows: ' .. vim.inspect(seen.texts[k]))
    end
    if #seen.texts > 0 then
      H.check(vim.startswith(seen.final.text, seen.texts[#seen.texts]), 'the final text extends the streamed one')
    end
    H.check(seen.final.indicator:match('^ %d+/%d+$') ~= nil, 'final indicator is " i/N": ' .. seen.final.indicator)
    if #seen.texts >= 2 then
      grew = grew + 1
    end
    total_updates = total_updates + (seen.updates or 0)
    H.keys('<C-]>') -- dismiss before the next words
    H.check(H.ghost(buf) == nil, 'dismissed')
  end
  -- On a narrow window, long suggestions are wrapped at its width (virtual
  -- text runs off the edge otherwise) and read back whole.
  vim.o.columns = 60
  local seen = one_suggestion(buf, ' Later')
  if H.check(seen.final ~= nil, 'narrow window: a suggestion') then
    local marks = vim.api.nvim_buf_get_extmarks(buf, require('inkstream.ghost').ns, 0, -1, { details = true })
    local d = marks[1][4]
    local pieces = { d.virt_text[1][1] }
    for _, vl in ipairs(d.virt_lines or {}) do
      table.insert(pieces, vl[1][1])
    end
    local width = vim.api.nvim_win_get_width(0)
    local r, c = H.cursor()
    local used = vim.fn.strdisplaywidth(H.lines(buf)[r + 1]:sub(1, c)) % width
    local inline = vim.fn.has('nvim-0.10') == 1
    for i, p in ipairs(pieces) do
      local limit = (i == 1 and not inline) and (width - used) or width
      H.check(vim.fn.strdisplaywidth(p) <= limit, 'piece ' .. i .. ' fits the window: ' .. vim.inspect(p))
    end
    local text = require('inkstream.suggestion').current_text(buf)
    H.eq(table.concat(pieces), text:gsub('\n', ''), 'the wrapped pieces make up the suggestion')
    H.out(string.format('narrow window (%d columns): suggestion of %d chars drawn in %d pieces', width, #text, #pieces))
  end

  H.out(string.format('growth seen by sampling in %d of %d suggestions; %.1f streamed updates per suggestion', grew, #rounds, total_updates / #rounds))
  H.check(grew >= 1, 'the drawn text was seen growing while streaming')
  local errors, all = H.message_errors()
  H.check(#errors == 0, ':messages has no errors: ' .. all)
end)
