-- Cancellation: typing (a key that does not continue the suggestion), moving
-- the cursor, leaving insert mode or switching buffer while a suggestion is
-- being generated cancels the request ($/cancelRequest; the server logs
-- "cancelled"), hides the ghost text at once, and nothing is drawn for the
-- older document version afterwards. Every ghost-text draw of the whole run is
-- recorded and must be at the cursor, in insert mode, for the buffer's current
-- text; between a cancelling key and the next request nothing may be drawn.
--
--   INKSTREAM_BINARY=... INKSTREAM_MODEL=<fixtures>/deep-scaled \
--     nvim --headless -u NONE -c "luafile tests/editor_plugins/test_cancel.lua"
local H = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'helpers.lua')

local IDLE = 600

-- Records every draw of the plugin's extmark (wrapping the API function the
-- plugin calls), with what the editor looked like at that moment.
local draws = {}
local function record_draws(ns)
  local real = vim.api.nvim_buf_set_extmark
  vim.api.nvim_buf_set_extmark = function(buf, mark_ns, row, col, opts)
    if mark_ns == ns then
      local cur = vim.api.nvim_win_get_cursor(0)
      table.insert(draws, {
        at = H.now(),
        buf = buf,
        current_buf = vim.api.nvim_get_current_buf(),
        row = row,
        col = col,
        cursor_row = cur[1] - 1,
        cursor_col = cur[2],
        mode = vim.api.nvim_get_mode().mode,
        requests = require('inkstream').stats().requests,
      })
    end
    return real(buf, mark_ns, row, col, opts)
  end
end

local function count(log, pattern)
  return select(2, H.read(log):gsub(pattern, ''))
end

-- Waits until a suggestion is being streamed (drawn, indicator on).
local function wait_streaming(buf)
  return H.wait_until(function()
    local g = H.ghost(buf)
    return g and g.indicator:find('⋯') and g
  end, 30000, 2)
end

-- A key that does not continue `text`.
local function other_key(text)
  return text:sub(1, 1) == 'Q' and 'Z' or 'Q'
end

H.run('nvim_plugin_cancel', function()
  local dir = H.tempdir()
  local log = dir .. '/server.log'
  H.setup({
    idle_delay = IDLE,
    settings = { n = 8, max_tokens = 80, stop_at = 'none', stream_every_tokens = 1 },
  }, log)
  record_draws(require('inkstream.ghost').ns)
  local buf = H.open(dir .. '/story.md', { 'The lighthouse keeper had not spoken to anyone in weeks.' })
  local stats = require('inkstream').stats()
  H.keys('A')

  local function scenario(name, keys, expect_insert)
    local updates_before = stats.partial_updates
    local g = wait_streaming(buf)
    if not H.check(g ~= nil, name .. ': a suggestion is streaming') then
      return
    end
    local cancelled_before = stats.cancelled
    local requests_before = stats.requests
    local updates = stats.partial_updates - updates_before
    local k = keys == 'type' and other_key(g.text) or keys
    H.keys(k, 5)
    local t_key = H.now()
    H.check(H.ghost(buf) == nil, name .. ': the ghost text is gone at once')
    H.eq(stats.cancelled, cancelled_before + 1, name .. ': the plugin cancelled the request')
    -- Until a new request goes out, nothing may be drawn (any draw would be
    -- an update for the older document version).
    H.wait_until(function()
      if stats.requests == requests_before then
        H.expect(H.ghost(buf) == nil, name .. ': no ghost text before the next request')
      end
      return H.now() - t_key > IDLE * 0.8
    end, 5000, 2)
    H.out(string.format('%s: cancelled after %d streamed updates', name, updates))
    if expect_insert == false then
      H.eq(H.mode(), 'n', name .. ': in normal mode')
    end
  end

  local cancelled_log = count(log, 'cancelled in')
  scenario('typing', 'type')
  scenario('typing again', 'type')
  scenario('moving the cursor', '<Left>')
  scenario('leaving insert mode', '<Esc>', false)
  -- Back to insert mode at the end, then switch buffer while streaming.
  H.keys('A')
  local g = wait_streaming(buf)
  H.check(g ~= nil, 'buffer switch: a suggestion is streaming')
  local cancelled_before = stats.cancelled
  vim.cmd('stopinsert')
  vim.cmd('enew') -- the autocommands see BufLeave (and InsertLeave)
  H.sleep(20)
  H.check(stats.cancelled > cancelled_before, 'buffer switch: the plugin cancelled the request')
  H.check(H.ghost(buf) == nil, 'buffer switch: no ghost text left in the old buffer')
  vim.cmd('buffer ' .. buf)

  -- The server saw the cancellations ($/cancelRequest -> "cancelled", or the
  -- didChange that came with the key -> also "cancelled").
  local server_cancels = H.wait_until(function()
    local n = count(log, 'cancelled in') - cancelled_log
    return n >= 5 and n
  end, 10000)
  H.out(string.format('server log: %d completions cancelled; plugin: %d cancel requests sent, %d stale updates dropped',
    server_cancels or 0, stats.cancelled, stats.stale_dropped))
  H.check(server_cancels ~= nil, 'the server log shows the 5 cancellations')

  -- Every draw of the run was at the cursor, in insert mode, in the current buffer.
  local bad = 0
  for _, d in ipairs(draws) do
    if d.row ~= d.cursor_row or d.col ~= d.cursor_col or d.mode:sub(1, 1) ~= 'i' or d.buf ~= d.current_buf then
      bad = bad + 1
    end
  end
  H.out(string.format('%d ghost-text draws recorded, %d not at the cursor of the current text', #draws, bad))
  H.eq(bad, 0, 'no ghost text drawn away from the cursor or outside insert mode')

  local errors, all = H.message_errors()
  H.check(#errors == 0, ':messages has no errors: ' .. all)
end)
