-- Accepting a suggestion: next word (<M-Right>), line (<M-Down>, <S-Tab>), all
-- (<Tab>), on a multi-line suggestion; exact buffer text and cursor after
-- each; each acceptance is one undo step; the server learns which
-- alternative was taken (inkstream.accept in its log); <Tab> with nothing
-- shown still inserts a tab.
--
--   INKSTREAM_BINARY=... INKSTREAM_MODEL=<fixtures>/tiny \
--     nvim --headless -u NONE -c "luafile tests/editor_plugins/test_accept.lua"
local H = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'helpers.lua')

-- Expected parts, as documented (:h inkstream-keys).
local function next_word(t)
  return t:match('^[ \t]*\n') or t:match('^[ \t]*[^%s]+') or t
end
local function next_line(t)
  return t:match('^\n*[^\n]*\n?')
end

-- `base` (a list of lines) with `text` inserted at the end of its last line.
local function with_text(base, text)
  local out = vim.deepcopy(base)
  local parts = vim.split(text, '\n', { plain = true })
  out[#out] = out[#out] .. parts[1]
  for i = 2, #parts do
    table.insert(out, parts[i])
  end
  return out
end

local function end_of(lines)
  return #lines - 1, #lines[#lines]
end

H.run('nvim_plugin_accept', function()
  local dir = H.tempdir()
  local log = dir .. '/server.log'
  local model = dofile(H.here .. 'newline_model.lua').make(H.model, dir .. '/newline-model', 12)
  H.setup({
    model = model,
    settings = { n = 3, max_tokens = 24, stop_at = 'none' },
  }, log)
  local start = { '# The keep', '', 'The castle stood on the hill, and the king said' }
  local buf = H.open(dir .. '/story.md', start)
  H.keys('G')
  H.keys('A')

  -- Wait for a finished suggestion (no streaming indicator).
  local g = H.wait_until(function()
    local x = H.ghost(buf)
    return x and not x.indicator:find('⋯') and x
  end, 30000)
  if not H.check(g ~= nil, 'a suggestion appeared') then
    return
  end
  -- Take an alternative that spans several lines (cycle to it).
  local n = require('inkstream.suggestion').count(buf)
  for _ = 1, n do
    if g.text:find('\n') and #vim.split(g.text, '\n', { plain = true }) >= 3 then
      break
    end
    H.keys('<M-]>')
    g = H.ghost(buf)
  end
  H.out('suggestion: ' .. vim.inspect(g.text) .. ' of ' .. n)
  if not H.check(g.text:find('\n') ~= nil, 'a multi-line suggestion (the newline-prone model)') then
    return
  end
  local full = g.text
  local expected = vim.deepcopy(start)

  -- Accept the next word.
  local word = next_word(full)
  H.keys('<M-Right>')
  expected = with_text(expected, word)
  H.check(vim.deep_equal(H.lines(buf), expected), 'accept word: buffer is ' .. vim.inspect(H.lines(buf)))
  local r, c = H.cursor()
  local er, ec = end_of(expected)
  H.eq(r .. ':' .. c, er .. ':' .. ec, 'accept word: cursor at the end of the word')
  local rest = full:sub(#word + 1)
  local g2 = H.ghost(buf)
  H.check(g2 ~= nil and g2.text == rest, 'after accept word the rest is shown: ' .. vim.inspect(g2 and g2.text))
  H.check(g2 ~= nil and g2.row == er and g2.col == ec, 'the rest is shown at the cursor')
  local after_word = vim.deepcopy(expected)

  -- Accept lines until the suggestion's last line, checking each step
  -- (a line acceptance that would take all the rest is left to <Tab>).
  local steps = 0
  while rest:find('\n') and next_line(rest) ~= rest and steps < 2 do
    local line = next_line(rest)
    H.keys(steps == 0 and '<M-Down>' or '<S-Tab>')
    expected = with_text(expected, line)
    H.check(vim.deep_equal(H.lines(buf), expected), 'accept line: buffer is ' .. vim.inspect(H.lines(buf)))
    r, c = H.cursor()
    er, ec = end_of(expected)
    H.eq(r .. ':' .. c, er .. ':' .. ec, 'accept line: cursor at the end of the accepted text')
    rest = rest:sub(#line + 1)
    local g3 = H.ghost(buf)
    H.check(g3 ~= nil and g3.text == rest, 'after accept line the rest is shown: ' .. vim.inspect(g3 and g3.text))
    steps = steps + 1
  end
  local after_lines = vim.deepcopy(expected)

  -- Accept all that is left (possibly several lines).
  H.check(rest ~= '', 'something left to accept')
  H.keys('<Tab>')
  expected = with_text(expected, rest)
  H.check(vim.deep_equal(H.lines(buf), expected), 'accept all: buffer is ' .. vim.inspect(H.lines(buf)))
  r, c = H.cursor()
  er, ec = end_of(expected)
  H.eq(r .. ':' .. c, er .. ':' .. ec, 'accept all: cursor at the end of the inserted text')
  H.eq(H.mode(), 'i', 'still in insert mode')
  H.check(vim.deep_equal(H.lines(buf), with_text(start, full)), 'the whole suggestion was inserted once')

  -- Undo: each acceptance is its own step.
  H.keys('<Esc>')
  vim.cmd('silent undo') -- (= u, without its message on stdout)
  H.check(vim.deep_equal(H.lines(buf), after_lines), 'u takes back the last acceptance only: ' .. vim.inspect(H.lines(buf)))
  for _ = 1, steps do
    vim.cmd('silent undo')
  end
  H.check(vim.deep_equal(H.lines(buf), after_word), 'u takes back the line acceptances: ' .. vim.inspect(H.lines(buf)))
  vim.cmd('silent undo')
  H.check(vim.deep_equal(H.lines(buf), start), 'u takes back the word: ' .. vim.inspect(H.lines(buf)))
  vim.cmd('silent redo')
  H.check(vim.deep_equal(H.lines(buf), after_word), ':redo redoes the word')

  -- The server was told which alternative was accepted (once).
  local accepted = H.wait_until(function()
    local n_acc = select(2, H.read(log):gsub('suggestion accepted', ''))
    return n_acc >= 1 and n_acc
  end, 5000)
  H.eq(accepted, 1, 'inkstream.accept sent once for the alternative taken')

  -- <Tab> with nothing shown inserts a tab (expr mapping falls through).
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { '' })
  require('inkstream').toggle() -- suggestions off: nothing will be shown
  H.keys('gg0i')
  H.keys('<Tab>x')
  H.eq(H.lines(buf)[1], '\tx', '<Tab> without a suggestion inserts a tab')
  H.keys('<Esc>')
  require('inkstream').toggle()

  local errors, all = H.message_errors()
  H.check(#errors == 0, ':messages has no errors: ' .. all)
end)
