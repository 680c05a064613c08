using System.Globalization;
using Dpkeyring.Testing;
using Microsoft.Extensions.Logging;
using Xunit;
using Xunit.Abstractions;

namespace Dpkeyring.AspNetCore.Tests;

/// <summary>
/// A test class whose every test gets its own real <c>dpkeyring serve</c> (tests rotate, revoke and
/// stop it). After each test, the log lines of its nodes and the end of the server's log go to the
/// test's output: the record a failure in CI is read from.
/// </summary>
public abstract class RealServerTest(ITestOutputHelper output) : IAsyncLifetime
{
    /// <summary>This test's server.</summary>
    protected DpkeyringServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await DpkeyringServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (Server is null)
        {
            return;
        }

        try
        {
            WriteRecord(output, Server);
        }
        finally
        {
            await Server.DisposeAsync();
        }
    }

    /// <summary>
    /// Writes the end of <paramref name="server"/>'s own log, then the log lines of its nodes, to
    /// <paramref name="output"/>: the nodes last, as a log cut to its tail (CI's) keeps them.
    /// </summary>
    internal static void WriteRecord(ITestOutputHelper output, DpkeyringServer server)
    {
        var log = server.Log().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        output.WriteLine($"--- dpkeyring serve, last {Math.Min(15, log.Length)} of {log.Length} log lines:");
        foreach (var line in log.TakeLast(15))
        {
            output.WriteLine(line);
        }

        foreach (var node in TestNode.Of(server))
        {
            // The package's own lines at every level; the framework's from Information up.
            var lines = node.Logs.Lines.Where(l => l.Category.StartsWith("Dpkeyring", StringComparison.Ordinal) || l.Level >= LogLevel.Information).ToList();
            output.WriteLine($"--- node {node.Options.NodeId} ({node.Source}), {lines.Count} log lines:");
            foreach (var line in lines)
            {
                output.WriteLine($"{line.At.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} {line.Level} {line.Category}[{line.EventId}] {line.Message}{(line.Exception is null ? string.Empty : " " + line.Exception.Split('\n')[0])}");
            }
        }
    }
}
