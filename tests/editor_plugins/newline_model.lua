-- Derives a "newline-prone" copy of a fixture model, for the multi-line tests.
--
-- The fixture models have random weights, and their vocabulary has only three
-- tokens holding a line break ("\n", "\n\n", "\n\u{a0}") out of 50257: they
-- practically never suggest a second line. This copy nudges the final layer
-- norm's bias toward the embedding of "\n" (the output layer is tied to the
-- embeddings), so "\n" becomes a likely next token while the other tokens keep
-- their random logits: suggestions then span several lines. Everything else
-- (tokenizer, config, other tensors) is the fixture's own.
--
-- Pure LuaJIT (ffi for the float32 bytes): no Python needed by the tests.
local ffi = require('ffi')

local M = {}

local function read(path)
  local f = assert(io.open(path, 'rb'))
  local s = f:read('*a')
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, 'wb'))
  f:write(s)
  f:close()
end

local function u64le(s)
  local n = 0
  for i = 8, 1, -1 do
    n = n * 256 + s:byte(i)
  end
  return n
end

-- Copies `src` (a fixture model folder) to `dst` with ln_f.bias set to
-- `strength` * e / |e|^2, e the embedding of token `token` (198 = "\n"), so
-- that the bias alone adds `strength` to that token's logit.
function M.make(src, dst, strength, token)
  token = token or 198
  vim.fn.mkdir(dst, 'p')
  for _, name in ipairs({ 'config.json', 'vocab.json', 'merges.txt', 'tokenizer.json' }) do
    if vim.loop.fs_stat(src .. '/' .. name) then
      write(dst .. '/' .. name, read(src .. '/' .. name))
    end
  end
  local blob = read(src .. '/model.safetensors')
  local header_len = u64le(blob:sub(1, 8))
  local header = vim.fn.json_decode(blob:sub(9, 8 + header_len))
  local base = 8 + header_len -- data offsets count from here (0-based)
  local wte, bias = header['wte.weight'], header['ln_f.bias']
  assert(wte and bias and wte.dtype == 'F32' and bias.dtype == 'F32', 'expected F32 wte.weight and ln_f.bias')
  local n_embd = wte.shape[2]
  local row_start = base + wte.data_offsets[1] + token * n_embd * 4
  local e = ffi.new('float[?]', n_embd)
  ffi.copy(e, blob:sub(row_start + 1, row_start + n_embd * 4), n_embd * 4)
  local norm2 = 0
  for i = 0, n_embd - 1 do
    norm2 = norm2 + e[i] * e[i]
  end
  local b = ffi.new('float[?]', n_embd)
  for i = 0, n_embd - 1 do
    b[i] = strength * e[i] / norm2
  end
  local bias_start = base + bias.data_offsets[1]
  local patched = blob:sub(1, bias_start) .. ffi.string(b, n_embd * 4) .. blob:sub(bias_start + n_embd * 4 + 1)
  assert(#patched == #blob)
  write(dst .. '/model.safetensors', patched)
  return dst
end

return M
