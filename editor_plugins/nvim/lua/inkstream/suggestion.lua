-- The suggestion of each buffer: asking for it, taking in streamed updates and
-- the final answer, typing through it, cycling alternatives, accepting.
--
-- One session per buffer. A session is anchored where the suggestion starts
-- (row, col) at one document state (changedtick). Any update whose request is
-- not the session's current one, or that arrives after the buffer changed, is
-- dropped: ghost text is never drawn for an older document version.
local config = require('inkstream.config')
local client = require('inkstream.client')
local compat = require('inkstream.compat')
local ghost = require('inkstream.ghost')

local M = {}

local uv = vim.uv or vim.loop -- (vim.loop is deprecated from 0.10)

local state = {
  sessions = {}, -- bufnr -> session
  timer = nil, -- the idle timer (one: only the current buffer is typed in)
  enabled = true,
  -- Counters, for :InkstreamStatus and tests.
  stats = {
    requests = 0,
    cancelled = 0, -- requests this client cancelled ($/cancelRequest)
    server_cancelled = 0, -- answered -32800/-32801/-32802
    stale_dropped = 0, -- updates dropped for an older request or document version
    partial_updates = 0,
    typed_through = 0,
    accepted = 0,
    last_first_ghost_ms = nil, -- idle trigger -> first ghost character
    first_ghost_ms = {},
    updates_per_suggestion = {},
  },
}

local ERR_CANCELLED, ERR_MODIFIED, ERR_SERVER_CANCELLED = -32800, -32801, -32802

-- The per-suggestion stats keep only the latest entries.
local STATS_KEEP = 100

local function push_stat(list, v)
  table.insert(list, v)
  while #list > STATS_KEEP do
    table.remove(list, 1)
  end
end

local function now_ms()
  return uv.hrtime() / 1e6
end

local function cursor()
  local pos = vim.api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

local function in_insert_mode()
  local m = vim.api.nvim_get_mode().mode
  return m:sub(1, 1) == 'i'
end

local function line_at(bufnr, row)
  return vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
end

-- ---------------------------------------------------------------------------
-- Session bookkeeping

local function current_item(s)
  return s and s.items[s.sel] or nil
end

local function render(bufnr, s)
  local item = current_item(s)
  if not item or item.text == '' then
    ghost.clear(bufnr)
    return
  end
  ghost.render(bufnr, s.row, s.col, item.text, {
    streaming = s.request_id ~= nil,
    index = s.sel,
    count = #s.items,
  })
  if not s.first_ghost_at and s.sent_at then
    s.first_ghost_at = now_ms()
    local ms = s.first_ghost_at - s.sent_at
    state.stats.last_first_ghost_ms = ms
    push_stat(state.stats.first_ghost_ms, ms)
  end
end

-- Stops the session's request (if any) without touching what is shown.
local function cancel_request(s)
  if s and s.request_id then
    local c = compat.get_client(s.client_id)
    if c and not compat.is_stopped(c) then
      pcall(compat.cancel_request, c, s.request_id)
    end
    state.stats.cancelled = state.stats.cancelled + 1
    s.request_id = nil
  end
  if s then
    -- Its answer, even one already on its way, is now for an older state.
    s.token = nil
  end
end

local function stop_timer()
  if state.timer then
    state.timer:stop()
  end
end

-- Cancels and hides the buffer's suggestion (a pending idle request stays
-- pending: for the plugin's own bookkeeping).
local function drop(bufnr)
  local s = state.sessions[bufnr]
  state.sessions[bufnr] = nil
  cancel_request(s)
  ghost.clear(bufnr)
end

-- The writer dismissed it: also no new request until the next edit.
function M.dismiss(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  stop_timer()
  drop(bufnr)
end

-- The buffer and cursor are where the session is anchored: same document
-- version (changedtick), current buffer, insert mode, cursor at the anchor.
local function still_anchored(bufnr, s)
  if not vim.api.nvim_buf_is_valid(bufnr) or vim.api.nvim_get_current_buf() ~= bufnr then
    return false
  end
  if vim.api.nvim_buf_get_changedtick(bufnr) ~= s.tick or not in_insert_mode() then
    return false
  end
  local row, col = cursor()
  return row == s.row and col == s.col
end

local function anchor(s, bufnr, row, col)
  local line = line_at(bufnr, row)
  s.row, s.col = row, col
  s.before, s.after = line:sub(1, col), line:sub(col + 1)
  s.line_count = vim.api.nvim_buf_line_count(bufnr)
  s.tick = vim.api.nvim_buf_get_changedtick(bufnr)
  s.seen = { s.tick, row, col }
end

-- The text between the anchor and the cursor, if the buffer is otherwise as
-- it was when the session was anchored (same text around it, same number of
-- lines apart from the typed ones). nil otherwise.
local function typed_since_anchor(s, bufnr, row, col)
  if row < s.row or (row == s.row and col < s.col) then
    return nil
  end
  if vim.api.nvim_buf_line_count(bufnr) ~= s.line_count + (row - s.row) then
    return nil
  end
  local lines = vim.api.nvim_buf_get_lines(bufnr, s.row, row + 1, false)
  if #lines ~= row - s.row + 1 then
    return nil
  end
  if lines[1]:sub(1, s.col) ~= s.before or lines[#lines]:sub(col + 1) ~= s.after then
    return nil
  end
  if #lines == 1 then
    return lines[1]:sub(s.col + 1, col)
  end
  local parts = { lines[1]:sub(s.col + 1) }
  for i = 2, #lines - 1 do
    table.insert(parts, lines[i])
  end
  table.insert(parts, lines[#lines]:sub(1, col))
  return table.concat(parts, '\n')
end

-- The writer typed (or accepted) `typed`, the first characters of the shown
-- suggestion: keep the alternatives that start with it, shortened, anchored at
-- the cursor. Returns false when nothing is left to show.
local function advance(s, bufnr, typed, row, col)
  local shown = current_item(s)
  local kept, sel = {}, 1
  for _, item in ipairs(s.items) do
    if item.text:sub(1, #typed) == typed and #item.text > #typed then
      local copy = vim.deepcopy(item)
      copy.text = item.text:sub(#typed + 1)
      copy.consumed = (item.consumed or '') .. typed
      table.insert(kept, copy)
      if item == shown then
        sel = #kept
      end
    end
  end
  s.items, s.sel = kept, sel
  anchor(s, bufnr, row, col)
  return #kept > 0
end

-- ---------------------------------------------------------------------------
-- Requests

local function position_params(bufnr, c, row, col)
  return {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = row, character = compat.lsp_character(line_at(bufnr, row), col, c.offset_encoding) },
  }
end

local function insert_text_of(item)
  local t = item.insertText
  if type(t) == 'table' then -- a StringValue (snippet): use its text as is
    t = t.value
  end
  return type(t) == 'string' and t or ''
end

-- An item replaces nothing (its range, if any, is empty at the position
-- asked about): what the server sends today. Others are dropped.
local function at_request_position(item, s)
  local r = item.range
  if r == nil or r == vim.NIL then
    return true
  end
  if type(r) ~= 'table' or type(r.start) ~= 'table' or type(r['end']) ~= 'table' then
    return false
  end
  local p = s.position
  return r.start.line == p.line
    and r.start.character == p.character
    and r['end'].line == p.line
    and r['end'].character == p.character
end

local function on_response(bufnr, s, token, err, result)
  local code = type(err) == 'table' and err.code or nil
  local cancelled = code == ERR_CANCELLED or code == ERR_MODIFIED or code == ERR_SERVER_CANCELLED
  if cancelled then
    state.stats.server_cancelled = state.stats.server_cancelled + 1
  end
  if state.sessions[bufnr] ~= s or s.token ~= token then
    if not err then
      state.stats.stale_dropped = state.stats.stale_dropped + 1
    end
    return
  end
  s.token = nil
  local request_id = s.request_id
  s.request_id = nil
  if err then
    if not cancelled then
      client.notify_once('inkstream: ' .. (type(err) == 'table' and tostring(err.message) or tostring(err)))
    end
    if not still_anchored(bufnr, s) then
      drop(bufnr)
      return
    end
    -- Keep what was streamed (without the streaming indicator).
    render(bufnr, s)
    return
  end
  if not still_anchored(bufnr, s) then
    state.stats.stale_dropped = state.stats.stale_dropped + 1
    drop(bufnr)
    return
  end
  local items = type(result) == 'table' and (result.items or result) or nil
  if type(items) ~= 'table' then
    items = {}
  end
  local shown = current_item(s)
  local shown_text = shown and shown.text or ''
  local new, sel = {}, nil
  for _, it in ipairs(items) do
    local text = type(it) == 'table' and at_request_position(it, s) and insert_text_of(it) or ''
    if text ~= '' then
      table.insert(new, { text = text, command = type(it.command) == 'table' and it.command or nil, done = true })
      -- Stay on the alternative being looked at.
      if not sel and shown_text ~= '' and text:sub(1, #shown_text) == shown_text then
        sel = #new
      end
    end
  end
  push_stat(state.stats.updates_per_suggestion, s.updates)
  s.items, s.sel, s.request_id_done = new, sel or 1, request_id
  if #new == 0 then
    drop(bufnr)
    return
  end
  render(bufnr, s)
end

-- Sends textDocument/inlineCompletion for the cursor position.
-- trigger_kind: 1 Invoked (the key), 2 Automatic (idle).
function M.request(bufnr, trigger_kind)
  local c = client.ready_client(bufnr)
  if not c then
    if not client.client_id(bufnr) then
      -- Its server exited: start a new one (within the restart limit).
      require('inkstream').attach(bufnr)
    end
    -- Not initialized yet (the server is starting): try again shortly.
    if client.starting(bufnr) then
      M.schedule(bufnr, trigger_kind, 100)
    end
    return
  end
  local old = state.sessions[bufnr]
  cancel_request(old)
  local row, col = cursor()
  local s = {
    client_id = c.id,
    items = {},
    sel = 1,
    stream = {}, -- alternative index -> { text, done }
    updates = 0,
  }
  -- Typing through a suggestion that was still streaming asks again; what is
  -- left of the old one stays on screen until the new one arrives.
  local kept = old and old.row == row and old.col == col and old.tick == vim.api.nvim_buf_get_changedtick(bufnr)
  if kept then
    s.items, s.sel = old.items, old.sel
  else
    ghost.clear(bufnr)
  end
  anchor(s, bufnr, row, col)
  local params = position_params(bufnr, c, row, col)
  s.position = params.position
  params.context = { triggerKind = trigger_kind or 2 }
  local token = {}
  s.token = token
  state.sessions[bufnr] = s
  s.sent_at = now_ms()
  local ok, id = compat.request(c, 'textDocument/inlineCompletion', params, function(err, result)
    on_response(bufnr, s, token, err, result)
  end, bufnr)
  if not ok then
    state.sessions[bufnr] = nil
    ghost.clear(bufnr) -- (the kept text too)
    return
  end
  -- (A response cannot arrive before this line: it is handled on a later
  -- turn of the event loop.)
  s.request_id = id
  state.stats.requests = state.stats.requests + 1
  if kept and #s.items > 0 then
    s.first_ghost_at = s.sent_at -- (not a first draw: no latency to measure)
    render(bufnr, s) -- the kept text, now with the streaming indicator
  end
end

-- inkstream/partialCompletion: the growing text of each alternative.
function M.on_partial(params, client_id)
  if type(params) ~= 'table' then
    return
  end
  local bufnr, s
  for b, sess in pairs(state.sessions) do
    if sess.request_id ~= nil and sess.request_id == params.requestId and sess.client_id == client_id then
      bufnr, s = b, sess
      break
    end
  end
  -- Not the latest request of a document (or already answered): ignore.
  if not s then
    state.stats.stale_dropped = state.stats.stale_dropped + 1
    return
  end
  if not still_anchored(bufnr, s) then
    state.stats.stale_dropped = state.stats.stale_dropped + 1
    return
  end
  if type(params.items) ~= 'table' then
    return
  end
  for _, it in ipairs(params.items) do
    if type(it) == 'table' and type(it.index) == 'number' and type(it.text) == 'string' then
      s.stream[it.index] = { text = it.text, done = it.done == true }
    end
  end
  -- Rebuild the visible list in alternative order, staying on the same one.
  local shown = current_item(s)
  local shown_alt = shown and shown.alt
  local indices = vim.tbl_keys(s.stream)
  table.sort(indices)
  local items, sel = {}, 1
  for _, i in ipairs(indices) do
    local st = s.stream[i]
    if st.text ~= '' then
      table.insert(items, { text = st.text, alt = i, done = st.done })
      if i == shown_alt then
        sel = #items
      end
    end
  end
  if #items == 0 then
    return
  end
  s.items, s.sel = items, sel
  s.updates = s.updates + 1
  state.stats.partial_updates = state.stats.partial_updates + 1
  render(bufnr, s)
end

-- ---------------------------------------------------------------------------
-- Triggering

-- Restarts the idle timer; when it fires with the buffer and cursor as they
-- are now, a request goes out.
function M.schedule(bufnr, trigger_kind, delay)
  if not state.enabled and trigger_kind ~= 1 then
    return
  end
  if not state.timer then
    state.timer = uv.new_timer()
  end
  local row, col = cursor()
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  state.timer:stop()
  state.timer:start(
    delay or config.get().idle_delay,
    0,
    vim.schedule_wrap(function()
      if
        vim.api.nvim_get_current_buf() ~= bufnr
        or not in_insert_mode()
        or vim.api.nvim_buf_get_changedtick(bufnr) ~= tick
      then
        return
      end
      local r, c = cursor()
      if r == row and c == col then
        M.request(bufnr, trigger_kind)
      end
    end)
  )
end

-- The trigger key: ask now (not after :InkstreamToggle off, nor where
-- Neovim's built-in inline completion is on).
function M.trigger(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if not require('inkstream').active(bufnr) then
    return false
  end
  stop_timer()
  M.dismiss(bufnr)
  M.request(bufnr, 1)
  return true
end

-- TextChangedI / CursorMovedI: typing through the suggestion keeps the rest;
-- anything else cancels it and, with auto-trigger, waits for the next pause.
function M.on_edit_or_move(bufnr)
  local row, col = cursor()
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local s = state.sessions[bufnr]
  if s and s.seen and s.seen[1] == tick and s.seen[2] == row and s.seen[3] == col then
    return -- already handled (CursorMovedI and TextChangedI both fire per key)
  end
  local auto = config.get().auto_trigger and state.enabled
  if s and current_item(s) and tick ~= s.tick then
    local typed = typed_since_anchor(s, bufnr, row, col)
    if typed and typed ~= '' and current_item(s).text:sub(1, #typed) == typed then
      state.stats.typed_through = state.stats.typed_through + 1
      local streaming = s.request_id ~= nil
      -- The server cancels a running generation on didChange; say so anyway
      -- so it stops at once.
      cancel_request(s)
      if advance(s, bufnr, typed, row, col) then
        render(bufnr, s)
        if streaming and auto then
          M.schedule(bufnr, 2)
        end
        return
      end
    end
  end
  drop(bufnr)
  if auto then
    M.schedule(bufnr, 2)
  else
    stop_timer()
  end
end

function M.on_insert_enter(bufnr)
  if config.get().auto_trigger and state.enabled then
    M.schedule(bufnr, 2)
  end
end

function M.on_leave(bufnr)
  stop_timer()
  M.dismiss(bufnr)
end

-- ---------------------------------------------------------------------------
-- What is shown, cycling, accepting

-- A suggestion is shown and still belongs to the buffer as it is (same
-- changedtick, cursor at its anchor). One that no longer does is dismissed.
function M.visible(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local s = state.sessions[bufnr]
  local item = current_item(s)
  if not (item and item.text ~= '' and ghost.visible(bufnr)) then
    return false
  end
  if not still_anchored(bufnr, s) then
    pcall(drop, bufnr)
    return false
  end
  return true
end

-- The text of the suggestion as shown (nil when none).
function M.current_text(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local item = current_item(state.sessions[bufnr])
  return item and item.text or nil
end

-- How many alternatives there are to cycle through.
function M.count(bufnr)
  local s = state.sessions[bufnr or vim.api.nvim_get_current_buf()]
  return s and #s.items or 0
end

function M.cycle(step, bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local s = state.sessions[bufnr]
  if not (s and #s.items > 1) then
    return false
  end
  s.sel = (s.sel - 1 + step) % #s.items + 1
  render(bufnr, s)
  return true
end

-- The part of `text` accepted by `kind`:
--   all:  everything;
--   word: leading blanks and the next word (or a line break);
--   line: leading line breaks, the rest of the line and its line break
--         (as copilot.vim's accept-line, so the next accept continues there).
local function part_of(text, kind)
  if kind == 'word' then
    return text:match('^[ \t]*\n') or text:match('^[ \t]*[^%s]+') or text
  elseif kind == 'line' then
    return text:match('^\n*[^\n]*\n?')
  end
  return text
end

-- Tells the server which alternative the writer took (once per alternative).
local function report_accept(s, item)
  if item.reported then
    return
  end
  item.reported = true
  local c = compat.get_client(s.client_id)
  if not c or compat.is_stopped(c) then
    return
  end
  local cmd = item.command
  if not cmd then
    -- Accepted while still streaming: the command comes with the final
    -- answer, which will not come now; say the same thing it would.
    local id = s.request_id or s.request_id_done
    if not id then
      return
    end
    cmd = { command = 'inkstream.accept', arguments = { { requestId = id, index = item.alt or 0, source = 'model' } } }
  end
  if type(cmd.command) ~= 'string' then
    return
  end
  compat.request(c, 'workspace/executeCommand', { command = cmd.command, arguments = cmd.arguments }, function() end)
end

-- Inserts the accepted part at the cursor (nvim_buf_set_text: literal text,
-- no autoindent or formatting) and moves the cursor after it. Runs from a
-- <Cmd> mapping in insert mode, so there is no textlock.
function M.accept(kind, bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if not M.visible(bufnr) then
    return false
  end
  local s = state.sessions[bufnr]
  local item = current_item(s)
  local part = part_of(item.text, kind or 'all')
  if part == '' then
    return false
  end
  local lines = ghost.split_lines(part)
  local row, col = s.row, s.col
  if not pcall(vim.api.nvim_buf_set_text, bufnr, row, col, row, col, lines) then
    -- (e.g. 'nomodifiable', or the text changed under it)
    drop(bufnr)
    return false
  end
  local end_row = row + #lines - 1
  local end_col = (#lines == 1 and col or 0) + #lines[#lines]
  pcall(vim.api.nvim_win_set_cursor, 0, { end_row + 1, end_col })
  state.stats.accepted = state.stats.accepted + 1
  report_accept(s, item)
  local streaming = s.request_id ~= nil
  cancel_request(s)
  if advance(s, bufnr, part, end_row, end_col) then
    render(bufnr, s)
    if streaming and config.get().auto_trigger and state.enabled then
      M.schedule(bufnr, 2)
    end
  else
    drop(bufnr)
  end
  return true
end

-- ---------------------------------------------------------------------------

function M.set_enabled(on)
  state.enabled = on
  if not on then
    stop_timer()
    for bufnr in pairs(state.sessions) do
      drop(bufnr)
    end
  end
end

function M.enabled()
  return state.enabled
end

function M.forget(bufnr)
  local s = state.sessions[bufnr]
  state.sessions[bufnr] = nil
  cancel_request(s)
end

function M.stats()
  return state.stats
end

return M
