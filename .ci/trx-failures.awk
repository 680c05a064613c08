# trx-failures.awk: each failed test of a TRX file (dotnet test --logger trx): its name, its
# message, the head of its stack trace and the tail of its output, and the errors of the run
# itself (a crashed or hung test host). .ci/test prints this at the end
# of a run, where a CI log that shows only its last lines still shows why a test failed.
#   awk -v label=net10.0 -f .ci/trx-failures.awk FILE.trx
function unescape(s) {
  gsub(/&lt;/, "<", s); gsub(/&gt;/, ">", s); gsub(/&quot;/, "\"", s); gsub(/&apos;/, "'", s)
  gsub(/&#xD;/, "", s); gsub(/&#xA;/, "\n", s); gsub(/&amp;/, "\\&", s)
  return s
}
function element(rec, tag,   s) {
  if (!match(rec, "<" tag ">[^<]*</" tag ">")) return ""
  s = substr(rec, RSTART + length(tag) + 2, RLENGTH - 2 * length(tag) - 5)
  return unescape(s)
}
function show(title, text, n, fromEnd,   lines, count, i, first, last) {
  if (text == "") return
  count = split(text, lines, "\n")
  first = 1; last = count
  if (fromEnd && count > n) first = count - n + 1
  if (!fromEnd && count > n) last = n
  printf "    %s%s:\n", title, (first > 1 ? " (last " n " lines)" : (last < count ? " (first " n " lines)" : ""))
  for (i = first; i <= last; i++) printf "      %s\n", lines[i]
}
BEGIN { RS = "</UnitTestResult>" }
# Errors of the run itself (a test host that crashed or was stopped by the hang timeout) are in
# <RunInfos>, not in a test result.
{
  rest = $0
  while (match(rest, /<RunInfo [^>]*outcome="Error"[^>]*>[ \t\r\n]*<Text>[^<]*<\/Text>/)) {
    info = substr(rest, RSTART, RLENGTH)
    rest = substr(rest, RSTART + RLENGTH)
    printf "--- RUN ERROR (%s):\n", label
    show("message", element(info, "Text"), 30, 0)
  }
}
{
  # A record may begin with self-closed results (passed, no output): keep the last opening tag on.
  rec = $0
  while ((i = index(rec, "<UnitTestResult ")) > 0 && index(substr(rec, i + 1), "<UnitTestResult ") > 0)
    rec = substr(rec, i + 1)
  if ((i = index(rec, "<UnitTestResult ")) > 0) rec = substr(rec, i)
  if (!match(rec, /<UnitTestResult [^>]*outcome="(Failed|Error|Timeout|Aborted)"/)) next
  $0 = rec
  name = ""
  if (match($0, /testName="[^"]*"/)) name = unescape(substr($0, RSTART + 10, RLENGTH - 11))
  printf "--- FAILED (%s): %s\n", label, name
  show("message", element($0, "Message"), 30, 0)
  show("stack trace", element($0, "StackTrace"), 12, 0)
  show("output", element($0, "StdOut"), 60, 1)
}
