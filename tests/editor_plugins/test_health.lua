-- :checkhealth inkstream passes (binary found, server starts, model loads)
-- and reports a missing binary as an ERROR; :InkstreamStatus shows the
-- server, the model, the last latency and tokens/s, the prefix cache hit
-- rate; :InkstreamToggle turns
-- suggestions off and on; :messages stays free of errors.
--
--   INKSTREAM_BINARY=... INKSTREAM_MODEL=<fixtures>/tiny \
--     nvim --headless -u NONE -c "luafile tests/editor_plugins/test_health.lua"
local H = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'helpers.lua')

-- Runs :checkhealth inkstream and returns its buffer's lines (closing its tab).
local function checkhealth()
  vim.cmd('checkhealth inkstream')
  local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  vim.cmd('bwipeout!')
  return lines
end

local function grep(lines, pattern)
  local out = {}
  for _, l in ipairs(lines) do
    if l:find(pattern) then
      table.insert(out, l)
    end
  end
  return out
end

H.run('nvim_plugin_health', function()
  local dir = H.tempdir()
  local log = dir .. '/server.log'
  H.setup({ settings = { n = 2, max_tokens = 8 } }, log)
  local buf = H.open(dir .. '/story.md', { 'The letter arrived on a Tuesday, and' })

  -- A healthy setup.
  local started = H.now()
  local report = checkhealth()
  H.out(string.format(':checkhealth inkstream (%.0f ms):\n  %s', H.now() - started, table.concat(report, '\n  ')))
  H.eq(#grep(report, 'ERROR'), 0, 'no ERROR in :checkhealth inkstream')
  H.check(#grep(report, 'OK') >= 3, 'OK: binary, server starts, model loads')
  H.check(#grep(report, 'model loads') == 1, 'the model-loads line is there')
  vim.cmd('buffer ' .. buf)

  -- A suggestion, then the status command.
  H.keys('A')
  H.type(' she')
  local g = H.wait_until(function()
    local x = H.ghost(buf)
    return x and not x.indicator:find('⋯') and x
  end, 30000)
  H.check(g ~= nil, 'a suggestion appeared')
  H.keys('<Esc>')
  local status = vim.fn.execute('InkstreamStatus')
  H.out(':InkstreamStatus' .. status)
  H.check(status:find('server #%d+: ' .. vim.pesc(H.binary)) ~= nil, 'status names the server command')
  H.check(status:find('model: ' .. vim.pesc(H.model), 1) ~= nil, 'status names the model')
  H.check(status:find('latency %d') ~= nil, 'status shows the last latency')
  H.check(status:find('tokens/s') ~= nil, 'status shows tokens/s')
  H.check(status:find('streaming true') ~= nil, 'status says the server streams')
  H.check(status:find('prefix cache: %d+%% of prompt tokens reused %(%d+ of %d+%), KV [%d.]+ / [%d.]+ MB') ~= nil,
    'status shows the prefix cache hit rate and KV memory')

  -- Toggle off: no suggestion while typing; on again: suggestions return.
  H.check(vim.fn.execute('InkstreamToggle'):find('off') ~= nil, ':InkstreamToggle turns suggestions off')
  local requests = require('inkstream').stats().requests
  H.keys('A')
  H.type(' opened it')
  H.sleep(900)
  H.check(H.ghost(buf) == nil, 'off: no suggestion')
  H.eq(require('inkstream').stats().requests, requests, 'off: no request')
  H.keys('<Esc>')
  H.check(vim.fn.execute('InkstreamToggle'):find('on') ~= nil, ':InkstreamToggle turns them on again')
  H.keys('A')
  H.type(' and')
  H.check(H.wait_until(function()
    return H.ghost(buf)
  end, 30000) ~= nil, 'on: suggestions again')
  H.keys('<Esc>')

  -- A binary that is not there is an ERROR with advice.
  local config = require('inkstream.config')
  local saved = vim.deepcopy(config.get())
  config.get().cmd = { dir .. '/no-such-inkstream', 'lsp' }
  local bad = checkhealth()
  for k, v in pairs(saved) do
    config.get()[k] = v
  end
  H.out(':checkhealth with a missing binary:\n  ' .. table.concat(grep(bad, 'ERROR'), '\n  '))
  H.check(#grep(bad, 'ERROR') >= 1, 'a missing binary is an ERROR')

  local errors, all = H.message_errors()
  H.check(#errors == 0, ':messages has no errors: ' .. all)
end)
