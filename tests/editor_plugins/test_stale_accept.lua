-- Accepting never inserts a suggestion made for an older text: when the
-- text before the cursor changes (here from a <Cmd> mapping, so no
-- TextChangedI runs in between) and <Tab> follows at once, the suggestion is
-- dismissed and <Tab> falls through (inserts a tab).
--
--   INKSTREAM_BINARY=... INKSTREAM_MODEL=<fixtures>/tiny \
--     nvim --headless -u NONE -c "luafile tests/editor_plugins/test_stale_accept.lua"
local H = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'helpers.lua')

local LINE = 'The castle stood on the hill, and'

local function final_ghost(buf)
  return H.wait_until(function()
    local x = H.ghost(buf)
    return x and not x.indicator:find('⋯') and x
  end, 30000)
end

H.run('nvim_plugin_stale_accept', function()
  local dir = H.tempdir()
  local log = dir .. '/server.log'
  H.setup({ auto_trigger = false, settings = { n = 2, max_tokens = 8 } }, log)
  local buf = H.open(dir .. '/story.md', { 'first', LINE })

  -- 1. Same length, different text before the cursor.
  H.keys('GA')
  H.keys('<M-\\>')
  local g = final_ghost(buf)
  if H.check(g ~= nil, 'a suggestion appeared') then
    H.keys('<Cmd>lua vim.api.nvim_buf_set_text(0, 1, 4, 1, 10, { "CASTLE" })<CR><Tab>', 200)
    local want = 'The CASTLE stood on the hill, and\t'
    H.eq(H.lines(buf)[2], want, 'same-length change: nothing stale inserted, <Tab> fell through')
    H.check(H.ghost(buf) == nil, 'same-length change: the suggestion is gone')
  end

  -- 2. Shorter text before the cursor (the anchor column is now past the
  -- end of the line).
  H.keys('<Esc>')
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { 'first', LINE })
  H.keys('GA')
  H.keys('<M-\\>')
  g = final_ghost(buf)
  if H.check(g ~= nil, 'a second suggestion appeared') then
    H.keys('<Cmd>lua vim.api.nvim_buf_set_text(0, 1, 0, 1, 4, {})<CR><Tab>', 200)
    H.eq(H.lines(buf)[2], 'castle stood on the hill, and\t', 'shorter line: nothing stale inserted, <Tab> fell through')
    H.check(H.ghost(buf) == nil, 'shorter line: the suggestion is gone')
  end

  -- 3. A line removed above (same text, another row).
  H.keys('<Esc>')
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { 'first', LINE })
  H.keys('GA')
  H.keys('<M-\\>')
  g = final_ghost(buf)
  if H.check(g ~= nil, 'a third suggestion appeared') then
    H.keys('<Cmd>lua vim.api.nvim_buf_set_lines(0, 0, 1, false, {})<CR><Tab>', 200)
    H.eq(#H.lines(buf), 1, 'line removed: one line left')
    H.check(not H.lines(buf)[1]:find(g.text, 1, true), 'line removed: nothing stale inserted: ' .. H.lines(buf)[1])
    H.check(H.ghost(buf) == nil, 'line removed: the suggestion is gone')
  end

  local errors, all = H.message_errors()
  H.check(#errors == 0, ':messages has no errors: ' .. all)
end)
