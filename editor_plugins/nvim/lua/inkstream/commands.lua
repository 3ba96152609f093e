-- User commands: :InkstreamStatus and :InkstreamToggle. Defined from
-- plugin/inkstream.lua (so they exist before setup()) and again by setup()
-- (for configurations that do not load plugin/ files, e.g. `-u NONE`).
local M = {}

local function echo(lines)
  local chunks = {}
  for i, l in ipairs(lines) do
    table.insert(chunks, { l .. (i < #lines and '\n' or '') })
  end
  vim.api.nvim_echo(chunks, true, {})
end

local function fmt_number(v, unit)
  if type(v) ~= 'number' then
    return '-'
  end
  return string.format('%.1f%s', v, unit or '')
end

local function count(v)
  return type(v) == 'number' and v or 0
end

-- The status lines (also used by :checkhealth).
function M.status_lines()
  local inkstream = require('inkstream')
  local client = require('inkstream.client')
  local suggestion = require('inkstream.suggestion')
  local stats = suggestion.stats()
  local lines = {}
  if not inkstream.is_setup() then
    return { "inkstream: not set up (call require('inkstream').setup())" }
  end
  table.insert(lines, string.format('inkstream: suggestions %s', suggestion.enabled() and 'on' or 'off'))
  local clients = client.clients()
  if #clients == 0 then
    table.insert(lines, 'server: not running (it starts with the first prose buffer)')
  end
  for _, c in ipairs(clients) do
    local cmd = c.config and c.config.cmd or {}
    table.insert(lines, string.format('server #%d: %s', c.id, table.concat(cmd, ' ')))
    table.insert(lines, string.format('  root: %s', tostring(c.config and c.config.root_dir)))
    local info = c.initialized and client.execute_sync(c, 'inkstream.status', {}, 2000) or nil
    if type(info) ~= 'table' then
      info = nil -- (no answer, an error, or null)
    end
    local last = client.last_status(c.id)
    local model = last and last.model
    if type(model) ~= 'string' then
      model = nil
    end
    if (not model or model == '') and info and type(info.settings) == 'table' and type(info.settings.model) == 'string' then
      model = info.settings.model
    end
    table.insert(lines, string.format('  model: %s', (model and model ~= '') and model or '(server default)'))
    if last then
      table.insert(
        lines,
        string.format(
          '  last: %s, latency %s, %s tokens/s (%s)',
          tostring(last.message),
          fmt_number(last.latencyMs, ' ms'),
          fmt_number(last.tokensPerSecond),
          tostring(last.source or '-')
        )
      )
    end
    if info then
      table.insert(
        lines,
        string.format(
          '  server counters: %d requests, %d instant, %d accepted, %d cancelled; streaming %s',
          count(info.requests),
          count(info.instantAnswers),
          count(info.accepted),
          count(info.cancelled),
          tostring(info.streaming)
        )
      )
      -- The engines of the loaded models: prefix cache hit rate and KV memory.
      if type(info.models) == 'table' then
        for _, m in ipairs(info.models) do
          local e = type(m) == 'table' and m.engine or nil
          if type(e) == 'table' then
            table.insert(
              lines,
              string.format(
                '  prefix cache: %s of prompt tokens reused (%d of %d), KV %s / %s MB, %d running (%s)',
                type(e.cacheHitRate) == 'number' and string.format('%.0f%%', 100 * e.cacheHitRate) or '-',
                count(e.cachedPromptTokens),
                count(e.promptTokens),
                fmt_number(e.kvCacheUsedMb),
                fmt_number(e.kvCacheMb),
                count(e.running),
                tostring(m.model)
              )
            )
          end
        end
      end
    end
  end
  table.insert(
    lines,
    string.format(
      'this session: %d requests, %d streamed updates, %d cancelled, %d accepted; first ghost text after %s',
      stats.requests,
      stats.partial_updates,
      stats.cancelled,
      stats.accepted,
      fmt_number(stats.last_first_ghost_ms, ' ms')
    )
  )
  return lines
end

function M.define()
  vim.api.nvim_create_user_command('InkstreamStatus', function()
    echo(M.status_lines())
  end, { desc = 'inkstream: server, model, latency, tokens/s' })
  vim.api.nvim_create_user_command('InkstreamToggle', function()
    local on = require('inkstream').toggle()
    echo({ 'inkstream: suggestions ' .. (on and 'on' or 'off') })
  end, { desc = 'inkstream: turn suggestions on or off' })
end

return M
