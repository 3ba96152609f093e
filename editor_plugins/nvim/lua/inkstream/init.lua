-- inkstream for Neovim: streamed ghost-text suggestions for prose from the
-- inkstream language server. setup() wires options, autocommands and
-- commands; the work is done by the modules it requires:
--   config      options
--   client      the language server (one per root) and its notifications
--   suggestion  per-buffer state: requests, streaming, typing through, accept
--   ghost       drawing (one extmark per buffer, updated in place)
--   keys        insert-mode mappings
--   health      :checkhealth inkstream
local config = require('inkstream.config')

local M = {}

local state = {
  setup_done = false,
  attached = {}, -- bufnr -> true while the buffer has a server
  wired = {}, -- bufnr -> true once its keys and autocommands are set
}

local AUGROUP = 'inkstream'

local function suggestion()
  return require('inkstream.suggestion')
end

local function eligible(bufnr)
  if not vim.api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= '' then
    return false
  end
  return vim.tbl_contains(config.get().filetypes, vim.bo[bufnr].filetype)
end

-- Neovim 0.12+ can draw inline completions itself; where the writer turned
-- that on for this buffer, let it (see :h inkstream-builtin). Also false
-- after :InkstreamToggle off.
function M.active(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  return state.wired[bufnr] == true
    and suggestion().enabled()
    and not require('inkstream.compat').builtin_inline_completion(bufnr)
end

-- Starts the server for the buffer (if needed), attaches it, maps the keys.
-- Also re-attaches a buffer whose server exited (a new one is started, within
-- the restart limit). Returns true when the buffer has a server.
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local client = require('inkstream.client')
  if state.attached[bufnr] and client.client_id(bufnr) then
    return true
  end
  if not eligible(bufnr) then
    return false
  end
  if not client.attach(bufnr) then
    return false
  end
  state.attached[bufnr] = true
  if state.wired[bufnr] then
    return true
  end
  state.wired[bufnr] = true
  require('inkstream.keys').attach(bufnr)
  local group = vim.api.nvim_create_augroup(AUGROUP .. '_buf_' .. bufnr, { clear = true })
  local function active()
    return state.wired[bufnr] and not require('inkstream.compat').builtin_inline_completion(bufnr)
  end
  vim.api.nvim_create_autocmd({ 'TextChangedI', 'CursorMovedI' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      if active() then
        suggestion().on_edit_or_move(bufnr)
      end
    end,
  })
  vim.api.nvim_create_autocmd('InsertEnter', {
    group = group,
    buffer = bufnr,
    callback = function()
      if active() then
        suggestion().on_insert_enter(bufnr)
      end
    end,
  })
  vim.api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      suggestion().on_leave(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd({ 'BufUnload', 'BufWipeout' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.detach(bufnr)
    end,
  })
  return true
end

-- The buffer's server exited (client.lua): forget its suggestion; keys and
-- autocommands stay, and the next request re-attaches (M.attach).
function M.on_server_exit(bufnr)
  state.attached[bufnr] = nil
  suggestion().forget(bufnr)
  require('inkstream.ghost').clear(bufnr)
end

function M.detach(bufnr)
  if not (state.attached[bufnr] or state.wired[bufnr]) then
    return
  end
  state.attached[bufnr] = nil
  state.wired[bufnr] = nil
  suggestion().forget(bufnr)
  require('inkstream.ghost').clear(bufnr)
  pcall(require('inkstream.keys').detach, bufnr)
  pcall(vim.api.nvim_del_augroup_by_name, AUGROUP .. '_buf_' .. bufnr)
  require('inkstream.client').detach(bufnr)
end

function M.setup(opts)
  config.set(opts)
  require('inkstream.ghost').define_highlights()
  require('inkstream.commands').define()
  local group = vim.api.nvim_create_augroup(AUGROUP, { clear = true })
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = config.get().filetypes,
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  vim.api.nvim_create_autocmd('ColorScheme', {
    group = group,
    callback = function()
      require('inkstream.ghost').define_highlights()
    end,
  })
  state.setup_done = true
  -- A second setup(): the keys of attached buffers follow the new options
  -- (what was mapped before is removed exactly).
  for bufnr in pairs(state.wired) do
    if vim.api.nvim_buf_is_valid(bufnr) then
      pcall(require('inkstream.keys').detach, bufnr)
      require('inkstream.keys').attach(bufnr)
    end
  end
  -- Buffers opened before setup() (e.g. a plugin manager loading lazily).
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) then
      M.attach(bufnr)
    end
  end
end

function M.is_setup()
  return state.setup_done
end

function M.attached(bufnr)
  return state.attached[bufnr or vim.api.nvim_get_current_buf()] == true
end

-- Public API, for mappings of one's own (e.g. when <Tab> is taken).
function M.is_visible()
  return suggestion().visible()
end
function M.accept()
  return suggestion().accept('all')
end
function M.accept_word()
  return suggestion().accept('word')
end
function M.accept_line()
  return suggestion().accept('line')
end
function M.next()
  return suggestion().cycle(1)
end
function M.prev()
  return suggestion().cycle(-1)
end
function M.dismiss()
  return suggestion().dismiss()
end
function M.trigger()
  return suggestion().trigger()
end
function M.toggle()
  suggestion().set_enabled(not suggestion().enabled())
  return suggestion().enabled()
end
function M.stats()
  return suggestion().stats()
end

return M
