-- Draws a suggestion as ghost text: its first line at the cursor, the others
-- as virtual lines below. One extmark per buffer, updated in place by id, so a
-- streamed update never clears and redraws (no flicker).
local config = require('inkstream.config')
local compat = require('inkstream.compat')

local M = {}

M.ns = vim.api.nvim_create_namespace('inkstream')

local state = {
  marks = {}, -- bufnr -> extmark id
}

-- Links (default = true: a colorscheme or the user may override them).
-- `:highlight default link` works on every version (nvim_set_hl's `default`
-- key only arrived in 0.8).
function M.define_highlights()
  vim.cmd('highlight default link InkstreamSuggestion Comment')
  vim.cmd('highlight default link InkstreamIndicator NonText')
end

function M.split_lines(text)
  return vim.split(text, '\n', { plain = true })
end

-- Virtual text shows a tab or a control character as ^I etc., so tabs become
-- the spaces they would take and other controls are dropped.
local function displayable(s, bufnr)
  if s:find('[%c]') == nil then
    return s
  end
  local ts = vim.bo[bufnr].tabstop
  s = s:gsub('\t', string.rep(' ', ts))
  return (s:gsub('[%c]', ''))
end

local function use_inline()
  local mode = config.get().render
  if mode == 'auto' then
    return compat.inline_virt_text()
  end
  return mode == 'inline' and compat.inline_virt_text()
end

-- The text width of the buffer's window when it wraps lines (virtual text
-- that runs past the edge is cut off, not wrapped), else nil.
local function wrap_width(bufnr)
  local win = vim.api.nvim_get_current_win()
  if vim.api.nvim_win_get_buf(win) ~= bufnr then
    win = vim.fn.bufwinid(bufnr)
  end
  if win == -1 or not vim.wo[win].wrap then
    return nil
  end
  local info = vim.fn.getwininfo(win)[1]
  local width = info.width - (info.textoff or 0)
  return width >= 10 and width or nil
end

-- Splits `s` into pieces of at most `first` display cells, then `width`.
local function wrap(s, first, width)
  local pieces, cur, cur_w, limit = {}, {}, 0, first
  for ch in s:gmatch('[%z\1-\127\194-\244][\128-\191]*') do
    local w = vim.api.nvim_strwidth(ch)
    if cur_w + w > limit and (#cur > 0 or limit < width) then
      table.insert(pieces, table.concat(cur))
      cur, cur_w, limit = {}, 0, width
    end
    table.insert(cur, ch)
    cur_w = cur_w + w
  end
  table.insert(pieces, table.concat(cur))
  return pieces
end

-- opts: { streaming = bool, index = i, count = N }
function M.render(bufnr, row, col, text, opts)
  local cfg = config.get()
  local hl, ind_hl = cfg.highlight, cfg.indicator_highlight
  local lines = M.split_lines(text)
  local indicator = ''
  if opts.count and opts.count > 1 and cfg.show_count then
    indicator = string.format(' %d/%d', opts.index, opts.count)
  end
  if opts.streaming then
    indicator = indicator .. cfg.streaming_indicator
  end

  local inline = use_inline()
  local width = wrap_width(bufnr)
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  local rest = inline and '' or displayable(line:sub(col + 1), bufnr)
  -- Display lines: the first at the cursor, then virtual lines; long ones
  -- are wrapped at the window's width (inline text wraps by itself).
  local first_pieces = { displayable(lines[1], bufnr) }
  if width and not inline then
    local used = vim.api.nvim_strwidth(displayable(line:sub(1, col), bufnr)) % width
    first_pieces = wrap(first_pieces[1], width - used, width)
  end
  local below = {}
  for i = 2, #first_pieces do
    table.insert(below, { { first_pieces[i], hl } })
  end
  if rest ~= '' then
    -- An overlay covers what follows the cursor: draw that text again after
    -- the suggestion's first line, so the line reads as if it were inserted.
    if #below > 0 then
      table.insert(below[#below], { rest, 'Normal' })
      rest = ''
    end
  end
  for i = 2, #lines do
    local text = displayable(lines[i], bufnr)
    for _, piece in ipairs(width and wrap(text, width, width) or { text }) do
      table.insert(below, { { piece, hl } })
    end
  end
  local first = { { first_pieces[1], hl } }
  if indicator ~= '' then
    table.insert(#below > 0 and below[#below] or first, { indicator, ind_hl })
  end
  if rest ~= '' then
    table.insert(first, { rest, 'Normal' })
  end

  local mark = {
    id = state.marks[bufnr],
    virt_text = first,
    virt_lines = #below > 0 and below or nil,
    virt_text_pos = inline and 'inline' or 'overlay',
    hl_mode = 'combine',
  }
  local ok, id = pcall(vim.api.nvim_buf_set_extmark, bufnr, M.ns, row, col, mark)
  if ok then
    state.marks[bufnr] = id
  end
  return ok
end

function M.clear(bufnr)
  local id = state.marks[bufnr]
  state.marks[bufnr] = nil
  if id and vim.api.nvim_buf_is_valid(bufnr) then
    pcall(vim.api.nvim_buf_del_extmark, bufnr, M.ns, id)
  end
end

function M.visible(bufnr)
  return state.marks[bufnr] ~= nil
end

return M
