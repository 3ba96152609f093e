-- A real third-party LSP client: Neovim's built-in one (0.7+), headless.
-- Usage: nvim --headless -u NONE -l?  (0.7 has no -l) ->
--   INKSTREAM_BINARY=... INKSTREAM_MODEL=... nvim --headless -u NONE -c "luafile nvim_client_test.lua"
-- Prints "nvim client: N passed, M failed" and exits non-zero on failure.
local binary = os.getenv("INKSTREAM_BINARY")
local model = os.getenv("INKSTREAM_MODEL")
local passed, failed = 0, 0
local function check(cond, what)
  if cond then
    passed = passed + 1
  else
    failed = failed + 1
    io.stderr:write("FAIL: " .. what .. "\n")
  end
end
local function finish()
  io.stdout:write(string.format("nvim client: %d passed, %d failed\n", passed, failed))
  vim.cmd(failed == 0 and "qall!" or "cquit!")
end

local ok, err = pcall(function()
  local client_id = vim.lsp.start_client({
    name = "inkstream",
    cmd = { binary, "lsp", "--model", model },
    root_dir = vim.fn.getcwd(),
    init_options = { n = 2, max_tokens = 8 },
  })
  check(client_id ~= nil, "start_client returned an id")
  local buf = vim.api.nvim_create_buf(true, false)
  vim.api.nvim_buf_set_name(buf, vim.fn.getcwd() .. "/story.md")
  vim.api.nvim_buf_set_option(buf, "filetype", "markdown")
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { "The castle stood on the hill, and the king" })
  vim.lsp.buf_attach_client(buf, client_id)
  -- Wait for initialize to finish.
  local ready = vim.wait(30000, function()
    local c = vim.lsp.get_client_by_id(client_id)
    return c ~= nil and c.initialized
  end, 50)
  check(ready, "client initialized")
  local client = vim.lsp.get_client_by_id(client_id)
  check(client.server_capabilities.inlineCompletionProvider == true, "server announces inlineCompletionProvider")
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    position = { line = 0, character = 42 },
    context = { triggerKind = 1 },
  }
  local responses = vim.lsp.buf_request_sync(buf, "textDocument/inlineCompletion", params, 60000)
  check(responses ~= nil, "got a response")
  local result = responses and responses[client_id] and responses[client_id].result
  check(result ~= nil and result.items ~= nil and #result.items >= 1, "response has items")
  if result and result.items and result.items[1] then
    check(type(result.items[1].insertText) == "string", "items have insertText")
    io.stdout:write("first suggestion: " .. vim.inspect(result.items[1].insertText) .. "\n")
  end
  -- Incremental sync through Neovim's own change tracking: edit, then ask the server for its copy.
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { "Caf\u{e9} \u{1F600} \u{4e2d}\u{6587}", "second line" })
  vim.wait(200)
  local text = vim.lsp.buf_request_sync(buf, "workspace/executeCommand",
    { command = "inkstream.documentText", arguments = { vim.uri_from_bufnr(buf) } }, 10000)
  local server_text = text and text[client_id] and text[client_id].result and text[client_id].result.text
  check(server_text == "Caf\u{e9} \u{1F600} \u{4e2d}\u{6587}\nsecond line\n", "server document matches the buffer: " .. vim.inspect(server_text))
  vim.lsp.stop_client(client_id)
end)
if not ok then
  check(false, "error: " .. tostring(err))
end
finish()
