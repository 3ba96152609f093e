-- Insert-mode keys of an attached buffer. They are expr mappings: with a
-- suggestion on screen they act on it (through a <Cmd> mapping, which may
-- change the buffer, unlike the expr itself), otherwise they fall through:
-- to the insert-mode mapping the key had before (buffer-local, else global:
-- a completion or snippet plugin's <Tab>), or else to the key itself, so
-- <Tab> still inserts a tab when nothing is shown. With the popup menu
-- visible they always fall through.
local config = require('inkstream.config')

local M = {}

-- action -> { lua call run through <Cmd>, condition to act }
local actions = {
  accept = { call = "require('inkstream.suggestion').accept('all')", when = 'visible', undo = true },
  accept_word = { call = "require('inkstream.suggestion').accept('word')", when = 'visible', undo = true },
  accept_line = { call = "require('inkstream.suggestion').accept('line')", when = 'visible', undo = true },
  next = { call = "require('inkstream.suggestion').cycle(1)", when = 'alternatives' },
  prev = { call = "require('inkstream.suggestion').cycle(-1)", when = 'alternatives' },
  dismiss = { call = "require('inkstream.suggestion').dismiss()", when = 'visible' },
  trigger = { call = "require('inkstream.suggestion').trigger()", when = 'active' },
}

local descriptions = {
  accept = 'inkstream: accept the suggestion',
  accept_word = 'inkstream: accept the next word',
  accept_line = 'inkstream: accept the line',
  next = 'inkstream: next alternative',
  prev = 'inkstream: previous alternative',
  dismiss = 'inkstream: dismiss the suggestion',
  trigger = 'inkstream: ask for a suggestion',
}

-- bufnr -> list of { lhs, action, prev = the mapping it replaced (maparg dict) or nil }
local mapped = {}

local function applies(when, bufnr)
  if vim.fn.pumvisible() == 1 then
    return false
  end
  if when == 'active' then
    return require('inkstream').active(bufnr)
  end
  local suggestion = require('inkstream.suggestion')
  if not suggestion.visible() then
    return false
  end
  if when == 'alternatives' then
    return suggestion.count() > 1
  end
  return true
end

local function termcodes(s)
  return vim.api.nvim_replace_termcodes(s, true, true, true)
end

local function find_entry(bufnr, lhs)
  for _, e in ipairs(mapped[bufnr] or {}) do
    if e.lhs == lhs then
      return e
    end
  end
  return nil
end

-- The Lua function of a mapping made with a callback (maparg gives a number
-- for it on 0.7; nvim_get_keymap gives the function).
local function callback_of(prev, bufnr)
  if type(prev.callback) == 'function' then
    return prev.callback
  end
  local list = prev.buffer == 1 and vim.api.nvim_buf_get_keymap(bufnr, 'i') or vim.api.nvim_get_keymap('i')
  local want = termcodes(prev.lhs)
  for _, m in ipairs(list) do
    if type(m.callback) == 'function' and termcodes(m.lhs) == want then
      return m.callback
    end
  end
  return nil
end

-- Runs a (non-expr) Lua callback of a replaced mapping, from <Cmd>
-- (entry `i` of the buffer's list).
function M.run_callback(bufnr, i)
  local e = (mapped[bufnr] or {})[i]
  local fn = e and e.prev and e.prev.fn
  if fn then
    local ok, err = pcall(fn)
    if not ok then
      vim.notify('inkstream: the mapping of ' .. e.lhs .. ' failed: ' .. tostring(err), vim.log.levels.ERROR)
    end
  end
end

-- Keys that do what `lhs` did before this plugin mapped it (from the expr).
local function fallback(bufnr, lhs)
  local e, index
  for i, x in ipairs(mapped[bufnr] or {}) do
    if x.lhs == lhs then
      e, index = x, i
      break
    end
  end
  local prev = e and e.prev
  if not prev then
    return termcodes(lhs)
  end
  local keys
  if prev.fn and prev.expr ~= 1 then
    return termcodes(string.format("<Cmd>lua require('inkstream.keys').run_callback(%d, %d)<CR>", bufnr, index))
  elseif prev.fn then
    local ok, res = pcall(prev.fn)
    keys = ok and type(res) == 'string' and res or ''
    if prev.replace_keycodes == 1 or prev.replace_keycodes == true then
      keys = termcodes(keys)
    end
  elseif prev.expr == 1 then
    local ok, res = pcall(vim.fn.eval, prev.rhs or '')
    keys = ok and type(res) == 'string' and res or ''
  else
    keys = termcodes(prev.rhs or '')
  end
  if keys == '' then
    return ''
  end
  if prev.noremap ~= 0 then
    -- The expr mapping is itself noremap: its result is not mapped again.
    -- (Returned as raw bytes: nothing in it is read as a key name twice.)
    return keys
  end
  -- A recursive mapping (e.g. to a <Plug> one): the keys go to the front of
  -- the typeahead, mapped; its own lhs at its start is not mapped again.
  local own = termcodes(lhs)
  if keys:sub(1, #own) == own then
    vim.api.nvim_feedkeys(keys:sub(#own + 1), 'im', false)
    vim.api.nvim_feedkeys(own, 'in', false)
  else
    vim.api.nvim_feedkeys(keys, 'im', false)
  end
  return ''
end

-- The keys an expr mapping returns for `action`, or what the key did before.
function M.expr(action, lhs, bufnr)
  local a = actions[action]
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if not applies(a.when, bufnr) then
    return fallback(bufnr, lhs)
  end
  local keys = '<Cmd>lua ' .. a.call .. '<CR>'
  if a.undo then
    -- The accepted text is an undo step of its own (u takes back just that).
    keys = '<C-G>u' .. keys .. '<C-G>u'
  end
  return termcodes(keys)
end

local function each_lhs(value, fn)
  if type(value) == 'string' and value ~= '' then
    fn(value)
  elseif type(value) == 'table' then
    for _, lhs in ipairs(value) do
      if type(lhs) == 'string' and lhs ~= '' then
        fn(lhs)
      end
    end
  end
end

-- The insert-mode mapping `lhs` has now (buffer-local first, then global),
-- unless it is one of this plugin's.
local function previous_mapping(bufnr, lhs)
  local prev
  vim.api.nvim_buf_call(bufnr, function()
    prev = vim.fn.maparg(lhs, 'i', false, true)
  end)
  if type(prev) ~= 'table' or type(prev.lhs) ~= 'string' then
    return nil -- (not mapped: an empty dict)
  end
  if type(prev.desc) == 'string' and prev.desc:find('^inkstream:') then
    return nil
  end
  if prev.callback ~= nil then
    prev.fn = callback_of(prev, bufnr)
    if not prev.fn then
      return nil
    end
  end
  return prev
end

function M.attach(bufnr)
  if mapped[bufnr] then
    M.detach(bufnr)
  end
  local list = {}
  mapped[bufnr] = list
  local keymaps = config.get().keymaps
  for action in pairs(actions) do
    each_lhs(keymaps[action], function(lhs)
      if find_entry(bufnr, lhs) then
        return -- one key in two actions: the first wins
      end
      table.insert(list, { lhs = lhs, action = action, prev = previous_mapping(bufnr, lhs) })
      -- (nvim_buf_set_keymap, not vim.keymap.set: the keys M.expr returns
      -- are already translated, and on 0.7 vim.keymap.set would translate
      -- them again.)
      vim.api.nvim_buf_set_keymap(bufnr, 'i', lhs, '', {
        callback = function()
          return M.expr(action, lhs, bufnr)
        end,
        expr = true,
        noremap = true,
        silent = true,
        desc = descriptions[action],
      })
    end)
  end
end

-- Removes exactly the keys M.attach mapped, and puts back buffer-local
-- mappings they had replaced.
function M.detach(bufnr)
  local list = mapped[bufnr]
  mapped[bufnr] = nil
  for _, e in ipairs(list or {}) do
    pcall(vim.api.nvim_buf_del_keymap, bufnr, 'i', e.lhs)
    local p = e.prev
    if p and p.buffer == 1 and vim.api.nvim_buf_is_valid(bufnr) then
      local opts = {
        expr = p.expr == 1,
        noremap = p.noremap ~= 0,
        silent = p.silent == 1,
        nowait = p.nowait == 1,
        script = p.script == 1,
        desc = p.desc,
      }
      if p.fn then
        opts.callback = p.fn
      end
      if p.replace_keycodes ~= nil and require('inkstream.compat').has('0.8') then
        opts.replace_keycodes = p.replace_keycodes == 1 or p.replace_keycodes == true
      end
      pcall(vim.api.nvim_buf_set_keymap, bufnr, 'i', e.lhs, p.fn and '' or (p.rhs or ''), opts)
    end
  end
end

return M
