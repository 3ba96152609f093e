-- With nothing shown, the plugin's keys do what they did before it mapped
-- them: a global `inoremap <Tab>` (a completion or snippet plugin's),
-- a recursive mapping to a <Plug> one, a Lua callback; with the popup menu
-- visible they fall through too. The trigger key respects :InkstreamToggle
-- off. A second setup() removes exactly the keys it had mapped.
--
--   INKSTREAM_BINARY=... INKSTREAM_MODEL=<fixtures>/tiny \
--     nvim --headless -u NONE -c "luafile tests/editor_plugins/test_fallthrough.lua"
local H = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'helpers.lua')

local LINE = 'The castle stood on the hill, and'

H.run('nvim_plugin_fallthrough', function()
  local dir = H.tempdir()
  local log = dir .. '/server.log'
  -- Mappings made before the plugin (as other plugins would).
  vim.cmd('inoremap <Tab> GLOBALTAB')
  vim.cmd('inoremap <Plug>(test-right) PLUGRIGHT')
  vim.cmd('imap <M-Right> <Plug>(test-right)')
  vim.keymap.set('i', '<C-]>', function()
    vim.api.nvim_put({ 'LUACB' }, 'c', false, true)
  end)
  H.setup({ auto_trigger = false, settings = { n = 2, max_tokens = 8 } }, log)
  local buf = H.open(dir .. '/story.md', { LINE })
  local stats = require('inkstream').stats()

  local function fresh()
    H.keys('<Esc>')
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, { LINE })
    H.keys('A')
  end

  -- 1. Nothing shown: the earlier mappings run.
  fresh()
  H.keys('<Tab>')
  H.eq(H.lines(buf)[1], LINE .. 'GLOBALTAB', '<Tab> with nothing shown replays the global inoremap')
  fresh()
  H.keys('<M-Right>')
  H.eq(H.lines(buf)[1], LINE .. 'PLUGRIGHT', '<M-Right> replays a recursive mapping to <Plug>')
  fresh()
  H.keys('<C-]>')
  H.eq(H.lines(buf)[1], LINE .. 'LUACB', '<C-]> replays a Lua callback mapping')

  -- 2. A suggestion shown: <Tab> accepts it (not the global mapping).
  fresh()
  H.keys('<M-\\>')
  local g = H.wait_until(function()
    return H.ghost(buf)
  end, 30000)
  if H.check(g ~= nil, 'the trigger key brings a suggestion') then
    H.keys('<Tab>')
    H.eq(H.lines(buf)[1], LINE .. g.text, '<Tab> accepts the suggestion shown')
  end

  -- 3. The popup menu visible: <Tab> falls through even with a suggestion.
  fresh()
  H.keys('<M-\\>')
  g = H.wait_until(function()
    return H.ghost(buf)
  end, 30000)
  if H.check(g ~= nil, 'a suggestion again') then
    local real = vim.fn.pumvisible
    vim.fn.pumvisible = function()
      return 1
    end
    H.keys('<Tab>')
    vim.fn.pumvisible = real
    H.check(vim.startswith(H.lines(buf)[1], LINE .. 'GLOBALTAB'), 'with the popup menu, <Tab> falls through: ' .. H.lines(buf)[1])
  end

  -- 4. :InkstreamToggle off: the trigger key asks nothing.
  fresh()
  require('inkstream').toggle()
  local requests = stats.requests
  H.keys('<M-\\>', 500)
  H.eq(stats.requests, requests, 'the trigger key sends nothing while suggestions are off')
  H.check(H.ghost(buf) == nil, 'nothing shown while off')
  require('inkstream').toggle()

  -- 5. A second setup() with another accept key: <Tab> is no longer the
  -- plugin's (the global mapping is back), the new key is.
  H.keys('<Esc>')
  H.setup({ auto_trigger = false, settings = { n = 2, max_tokens = 8 }, keymaps = { accept = '<C-l>' } }, log)
  local tab = vim.fn.maparg('<Tab>', 'i', false, true)
  H.eq(tab.rhs, 'GLOBALTAB', 'after the second setup(), <Tab> is the global mapping again')
  H.check(vim.fn.maparg('<C-l>', 'i') ~= '', 'the new accept key is mapped')
  fresh()
  H.keys('<M-\\>')
  g = H.wait_until(function()
    return H.ghost(buf)
  end, 30000)
  if H.check(g ~= nil, 'a suggestion after the second setup()') then
    H.keys('<C-l>')
    H.eq(H.lines(buf)[1], LINE .. g.text, 'the new accept key accepts')
  end

  local errors, all = H.message_errors()
  H.check(#errors == 0, ':messages has no errors: ' .. all)
end)
