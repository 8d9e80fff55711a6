-- resdsl lsp in Neovim 0.7 (Debian bookworm), for scripts/editor_screenshot.sh: the server started for *.rd
-- files, hover on K, inlay hints requested from the server and drawn at the end of their lines (Neovim draws
-- them itself from 0.10: see the README). RESDSL_LSP names the resdsl executable.
local server = os.getenv("RESDSL_LSP") or "resdsl"
vim.o.termguicolors = false
vim.o.background = "dark"
vim.o.number = true
vim.o.signcolumn = "no"
vim.o.laststatus = 0
vim.o.ruler = false
vim.o.showmode = false
vim.o.shortmess = vim.o.shortmess .. "I"
vim.cmd("autocmd BufRead,BufNewFile *.rd setfiletype resdsl") -- 0.7: vim.filetype.add needs do_filetype_lua
local function syntax() -- a few words of the language coloured (the VS Code extension has the full grammar)
  vim.cmd([[
    syntax keyword rdKeyword network stem stage head block param import train input classes shortcut expect
    syntax keyword rdOp conv bn relu avgpool maxpool fc global dataset batch optimizer schedule iterations
    syntax match rdNumber /\<\d\+\(x\d\+\)*\>/
    syntax region rdString start=/"/ end=/"/
    syntax match rdComment /#.*$/
    highlight link rdKeyword Statement
    highlight link rdOp Identifier
    highlight link rdNumber Number
    highlight link rdString String
    highlight link rdComment Comment
  ]])
end
vim.cmd("highlight ResdslInlayHint ctermfg=244 cterm=italic")
vim.cmd("highlight NormalFloat ctermbg=236 ctermfg=252")
vim.cmd("highlight FloatBorder ctermbg=236 ctermfg=244")

local ns = vim.api.nvim_create_namespace("resdsl_inlay_hints")

local function inlay_hints(client, bufnr)
  local last = vim.api.nvim_buf_line_count(bufnr)
  local params = {
    textDocument = vim.lsp.util.make_text_document_params(bufnr),
    range = { start = { line = 0, character = 0 }, ["end"] = { line = last, character = 0 } },
  }
  client.request("textDocument/inlayHint", params, function(err, hints)
    if err or not hints then
      return
    end
    vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
    for _, hint in ipairs(hints) do
      local label = hint.label
      if type(label) == "table" then
        local parts = {}
        for _, part in ipairs(label) do
          table.insert(parts, part.value)
        end
        label = table.concat(parts)
      end
      vim.api.nvim_buf_set_extmark(bufnr, ns, hint.position.line, 0, {
        virt_text = { { " " .. label, "ResdslInlayHint" } },
        virt_text_pos = "eol",
      })
    end
  end, bufnr)
end

vim.api.nvim_create_autocmd("FileType", {
  pattern = "resdsl",
  callback = function(args)
    vim.schedule(syntax) -- after the Syntax event, which clears a buffer's syntax
    local id = vim.lsp.start_client({
      name = "resdsl",
      cmd = { server, "lsp" },
      root_dir = vim.fn.getcwd(),
      handlers = {
        ["textDocument/hover"] = vim.lsp.with(vim.lsp.handlers.hover, { border = "rounded" }),
      },
      on_attach = function(client, bufnr)
        vim.keymap.set("n", "K", vim.lsp.buf.hover, { buffer = bufnr })
        vim.defer_fn(function()
          inlay_hints(client, bufnr)
        end, 1500) -- after the server's first check of the buffer
        vim.api.nvim_create_autocmd({ "InsertLeave", "TextChanged" }, {
          buffer = bufnr,
          callback = function()
            inlay_hints(client, bufnr)
          end,
        })
      end,
    })
    vim.lsp.buf_attach_client(args.buf, id)
  end,
})
