-- busted output handler used by ci/test.sh (`busted -o ci/busted_count.lua`).
--
-- Prints like busted's plainTerminal (utfTerminal when NET_BUSTED_UTF=1), and keeps two files up to date
-- after every test, so that ci/test.sh can count even a run that was killed by its timeout or crashed:
--   $NET_BUSTED_COUNTS    lines "passed=N", "failed=N", "pending=N", "done=0|1", "current=<test name>"
--   $NET_BUSTED_FAILURES  one block per failure/error: name, file:line, message (appended as they happen)
-- "failed" counts failures and errors, including errors outside an `it` (a spec file that does not load).

return function(options)
  local busted = require 'busted'
  local style = os.getenv('NET_BUSTED_UTF') == '1' and 'utfTerminal' or 'plainTerminal'
  local handler = require('busted.outputHandlers.' .. style)(options)

  local counts_path = os.getenv('NET_BUSTED_COUNTS')
  local failures_path = os.getenv('NET_BUSTED_FAILURES')
  local current, done = '', false

  local function write_counts()
    if not counts_path then return end
    local f = io.open(counts_path, 'w')
    if not f then return end
    f:write(('passed=%d\nfailed=%d\npending=%d\ndone=%d\ncurrent=%s\n'):format(
      handler.successesCount, handler.failuresCount + handler.errorsCount, handler.pendingsCount,
      done and 1 or 0, (current:gsub('\n', ' '))))
    f:close()
  end

  local function record(entry, kind)
    if not failures_path or not entry then return end
    local f = io.open(failures_path, 'a')
    if not f then return end
    local msg = entry.message
    if msg == nil then msg = 'Nil error'
    elseif type(msg) ~= 'string' then msg = require('pl.pretty').write(msg) end
    local where = ''
    local tr = entry.element and entry.element.trace
    if tr and tr.short_src then where = tr.short_src .. ':' .. tostring(tr.currentline) end
    -- keep the summary short: the full message and traceback are in busted's own output above
    local lines, n = {}, 0
    for line in (msg .. '\n'):gmatch('(.-)\n') do
      n = n + 1
      if n <= 12 then lines[#lines + 1] = '      ' .. line end
    end
    if n > 12 then lines[#lines + 1] = ('      ... (%d more lines)'):format(n - 12) end
    if where ~= '' then where = '    at ' .. where .. '\n' end
    f:write(('  [%s] %s\n%s%s\n'):format(kind, entry.name or '?', where, table.concat(lines, '\n')))
    f:close()
  end

  busted.subscribe({ 'test', 'start' }, function(element)
    current = handler.getFullName(element)
    write_counts()
    return nil, true
  end)

  busted.subscribe({ 'test', 'end' }, function(element, parent, status)
    if status == 'failure' then
      record(handler.failures[#handler.failures], 'FAIL')
    elseif status == 'error' then
      record(handler.errors[#handler.errors], 'ERROR')
    end
    current = ''
    write_counts()
    return nil, true
  end)

  -- errors outside an `it` (file load errors, errors in describe/before_each...)
  local function outside(element)
    if element.descriptor ~= 'it' then
      record(handler.errors[#handler.errors], 'ERROR')
      write_counts()
    end
    return nil, true
  end
  busted.subscribe({ 'error' }, outside)
  busted.subscribe({ 'failure' }, function(element)
    if element.descriptor ~= 'it' then return outside(element) end
    return nil, true
  end)

  busted.subscribe({ 'suite', 'end' }, function()
    done = true
    current = ''
    write_counts()
    return nil, true
  end)

  write_counts()
  return handler
end
