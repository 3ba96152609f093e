-- The demo's whole Neovim configuration (scripts/nvim_demo.sh runs
-- `nvim -u editor_plugins/nvim/demo/init.lua STORY`; no user config is read).
-- The script passes the binary and model through the environment.
local plugin_dir = vim.env.INKSTREAM_DEMO_PLUGIN
local binary = vim.env.INKSTREAM_DEMO_BINARY
local model = vim.env.INKSTREAM_DEMO_MODEL

vim.opt.runtimepath:prepend(plugin_dir)
vim.o.shadafile = 'NONE'
vim.o.swapfile = false
vim.o.wrap = true
vim.o.linebreak = true
vim.o.number = false
vim.o.laststatus = 2
vim.o.showmode = true
if vim.fn.has('termguicolors') == 1 and vim.env.COLORTERM then
  vim.o.termguicolors = true
end

require('inkstream').setup({
  cmd = { binary, 'lsp' },
  model = (model ~= nil and model ~= '') and model or nil,
  settings = { n = 3, max_tokens = 32 },
})

local cheat_sheet = {
  ' inkstream demo: pause typing in insert mode and a suggestion appears as ghost text',
  '',
  '   <Tab>              accept it all            <M-]>  <M-[>   next / previous alternative',
  '   <M-Right>          accept the next word     <C-]>          dismiss',
  '   <M-Down> <S-Tab>   accept the line          <M-\\>          ask now',
  '',
  '   " ⋯" while it is being written;  " 2/3": alternative 2 of 3.   (M = Alt)',
  '   :InkstreamStatus   :InkstreamToggle   :checkhealth inkstream   :qa! quits',
  '   (the story is a temporary copy: edit freely)',
}

-- The cheat sheet goes in a separate window (a scratch buffer), so it is
-- never part of the text sent for completion.
local function show_cheat_sheet(story_win)
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, cheat_sheet)
  vim.bo[buf].modifiable = false
  vim.bo[buf].bufhidden = 'wipe'
  vim.cmd('botright ' .. #cheat_sheet .. 'split')
  local win = vim.api.nvim_get_current_win()
  vim.api.nvim_win_set_buf(win, buf)
  vim.wo[win].winfixheight = true
  vim.wo[win].number = false
  vim.wo[win].cursorline = false
  vim.wo[win].statusline = ' keys'
  vim.api.nvim_set_current_win(story_win)
  -- Quitting the story quits the demo (not leaving the cheat sheet alone).
  vim.api.nvim_create_autocmd('QuitPre', {
    callback = function()
      if vim.api.nvim_win_is_valid(win) and vim.api.nvim_get_current_win() ~= win then
        pcall(vim.api.nvim_win_close, win, true)
      end
    end,
  })
end

vim.api.nvim_create_autocmd('VimEnter', {
  once = true,
  callback = function()
    local story_win = vim.api.nvim_get_current_win()
    show_cheat_sheet(story_win)
    -- End of the story, in insert mode: the writer (or the model) goes on.
    vim.cmd('normal! G$')
    vim.cmd('startinsert!')
  end,
})
