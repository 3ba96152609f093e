-- Options of the plugin: the defaults, and merging what setup() is given.
-- Every other module reads options through `require('inkstream.config').get()`,
-- so a second setup() call takes effect everywhere at once.
local M = {}

M.defaults = {
  -- The language server. `cmd` is the whole command line; `args` are appended
  -- to it (e.g. { '--log-file', '/tmp/inkstream.log', '--log-level', 'debug' }).
  cmd = { 'inkstream', 'lsp' },
  args = {},
  -- Model folder (or a name inside `settings.models_dir`). nil: the server's
  -- default model. Sent as initializationOptions.model.
  model = nil,
  -- Any server setting (docs/protocol.md "Settings"): n, max_tokens,
  -- temperature, top_k, top_p, seed, stop, stop_at, stream_interval_ms,
  -- stream_every_tokens, context_chars, device, dtype, threads, routing...
  -- Sent as initializationOptions.
  settings = {},
  -- Ask the server to stream suggestions while they are generated
  -- (inkstream/partialCompletion). A server that does not stream still works.
  streaming = true,
  filetypes = { 'markdown', 'text', 'rst', 'tex', 'gitcommit', 'mail' },
  -- A server per root: the first parent folder holding one of these, else the
  -- file's own folder.
  root_markers = { '.git' },
  -- Request a suggestion by itself after `idle_delay` ms without typing in
  -- insert mode. Off: only the trigger key asks.
  auto_trigger = true,
  idle_delay = 300,
  -- How long Neovim's LSP client batches edits before sending didChange.
  debounce_text_changes = 50,
  -- Keys in insert mode (buffer-local, only in attached buffers). false or ''
  -- leaves a key unmapped; a list maps several keys to one action.
  keymaps = {
    accept = '<Tab>',
    accept_word = '<M-Right>',
    accept_line = { '<M-Down>', '<S-Tab>' },
    next = '<M-]>',
    prev = '<M-[>',
    dismiss = '<C-]>',
    trigger = '<M-\\>',
  },
  -- Highlight groups (both are defined with `default` links, so a colorscheme
  -- or the user can override them).
  highlight = 'InkstreamSuggestion',
  indicator_highlight = 'InkstreamIndicator',
  -- Shown after the suggestion while it is still being generated.
  streaming_indicator = ' ⋯',
  -- Show " i/N" after the suggestion when there are alternatives.
  show_count = true,
  -- 'auto': inline virtual text where Neovim has it (0.10+), else an overlay.
  -- 'inline' or 'overlay' force one.
  render = 'auto',
}

local current = vim.deepcopy(M.defaults)

local function is_list(t)
  return type(t) == 'table' and (next(t) == nil or t[1] ~= nil)
end

-- Lists replace (a user's filetypes are the whole list); tables merge.
local function merge(base, over)
  if over == nil then
    return base
  end
  if type(base) ~= 'table' or type(over) ~= 'table' or is_list(over) or is_list(base) then
    return vim.deepcopy(over)
  end
  local out = vim.deepcopy(base)
  for k, v in pairs(over) do
    out[k] = merge(out[k], v)
  end
  return out
end

local checks = {
  cmd = 'table',
  args = 'table',
  model = 'string',
  settings = 'table',
  streaming = 'boolean',
  filetypes = 'table',
  root_markers = 'table',
  auto_trigger = 'boolean',
  idle_delay = 'number',
  debounce_text_changes = 'number',
  keymaps = 'table',
  highlight = 'string',
  indicator_highlight = 'string',
  streaming_indicator = 'string',
  show_count = 'boolean',
  render = 'string',
}

-- Returns the merged options, or raises an error naming a wrong option.
function M.set(opts)
  opts = opts or {}
  for key, value in pairs(opts) do
    if checks[key] == nil then
      error(string.format('inkstream: unknown option %q', tostring(key)), 0)
    end
    if type(value) ~= checks[key] then
      error(string.format('inkstream: option %q must be a %s', key, checks[key]), 0)
    end
  end
  if opts.cmd and (#opts.cmd == 0 or type(opts.cmd[1]) ~= 'string') then
    error('inkstream: option "cmd" must be a non-empty list of strings', 0)
  end
  if opts.render and not vim.tbl_contains({ 'auto', 'inline', 'overlay' }, opts.render) then
    error('inkstream: option "render" must be "auto", "inline" or "overlay"', 0)
  end
  current = merge(vim.deepcopy(M.defaults), opts)
  return current
end

function M.get()
  return current
end

-- The server's command line: cmd + args.
function M.command()
  local c = vim.deepcopy(current.cmd)
  vim.list_extend(c, current.args)
  return c
end

-- initializationOptions: the settings, the model, the streaming opt-in.
function M.init_options()
  local o = vim.deepcopy(current.settings)
  if current.model and current.model ~= '' then
    o.model = current.model
  end
  o.streaming = current.streaming
  return o
end

return M
