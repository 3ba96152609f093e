-- Loaded at startup by Neovim (and by plugin managers). It only defines the
-- commands: nothing starts until require('inkstream').setup{...} is called.
if vim.g.loaded_inkstream or vim.fn.has('nvim-0.7') == 0 then
  return
end
vim.g.loaded_inkstream = true
require('inkstream.commands').define()
