using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Dpkeyring.Testing;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Dpkeyring.AspNetCore.Tests;

/// <summary>An ASP.NET Core node (a generic host with Data Protection) reading its ring from a real dpkeyring server.</summary>
internal sealed class TestNode : IAsyncDisposable
{
    private static readonly ConditionalWeakTable<DpkeyringServer, ConcurrentQueue<TestNode>> ByServer = new();
    private static int _count;

    private TestNode(IHost host, LogSink logs, DpkeyringOptions options)
    {
        Host = host;
        Logs = logs;
        Options = options;
        Source = options.Url;
    }

    public IHost Host { get; }

    public LogSink Logs { get; }

    /// <summary>The options the node was configured with (before defaults).</summary>
    public DpkeyringOptions Options { get; }

    public IServiceProvider Services => Host.Services;

    /// <summary>Where the node reads its ring: the server's URL, or the agent folder.</summary>
    public string? Source { get; private set; }

    /// <summary>The nodes built for <paramref name="server"/> so far, in order.</summary>
    public static IEnumerable<TestNode> Of(DpkeyringServer server) =>
        ByServer.TryGetValue(server, out var nodes) ? nodes : [];

    /// <summary>Builds a node for <paramref name="server"/> (token file, own cache folder, short poll wait) and starts it.</summary>
    public static async Task<TestNode> StartAsync(DpkeyringServer server, Action<DpkeyringOptions>? configure = null, Action<IServiceCollection>? services = null, string application = "test-app")
    {
        var node = Create(server, configure, services, application);
        await node.Host.StartAsync();
        return node;
    }

    /// <summary>Builds a node without starting it.</summary>
    public static TestNode Create(DpkeyringServer server, Action<DpkeyringOptions>? configure = null, Action<IServiceCollection>? services = null, string application = "test-app")
    {
        var options = new DpkeyringOptions
        {
            Url = server.Url,
            TokenFile = server.WriteTokenFile(server.NodeToken),
            NodeId = $"node-{Interlocked.Increment(ref _count)}",
            CacheDirectory = Path.Combine(server.WorkDirectory, $"cache-{Guid.NewGuid():N}"),
            PollWait = TimeSpan.FromSeconds(5),
        };
        configure?.Invoke(options);
        var node = Create(options, services, application);
        ByServer.GetOrCreateValue(server).Enqueue(node);
        return node;
    }

    /// <summary>Builds a node that reads the agent folder <paramref name="folder"/> (<c>UseDpkeyringAgentFolder</c>), without starting it; its log goes with <paramref name="server"/>'s test record.</summary>
    public static TestNode CreateForAgentFolder(DpkeyringServer server, string folder)
    {
        var node = Create(new DpkeyringOptions { NodeId = $"folder-node-{Interlocked.Increment(ref _count)}" }, dataProtection: b => b.UseDpkeyringAgentFolder(folder));
        node.Source = folder;
        ByServer.GetOrCreateValue(server).Enqueue(node);
        return node;
    }

    /// <summary>Builds a node from complete options, without starting it.</summary>
    public static TestNode Create(DpkeyringOptions options, Action<IServiceCollection>? services = null, string application = "test-app", Func<IDataProtectionBuilder, IDataProtectionBuilder>? dataProtection = null)
    {
        var logs = new LogSink();
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(logs);
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        var dp = builder.Services.AddDataProtection().SetApplicationName(application);
        if (dataProtection is not null)
        {
            dataProtection(dp);
        }
        else
        {
            dp.PersistKeysToDpkeyring(o => Copy(options, o));
        }

        builder.Services.AddHealthChecks().AddDpkeyring();
        services?.Invoke(builder.Services);
        return new TestNode(builder.Build(), logs, options);
    }

    public IDataProtector Protector(string purpose = "test") =>
        Services.GetRequiredService<IDataProtectionProvider>().CreateProtector(purpose);

    public string Protect(string text, string purpose = "test") => Protector(purpose).Protect(text);

    public string Unprotect(string payload, string purpose = "test") => Protector(purpose).Unprotect(payload);

    /// <summary>The key the node protects with now (read from a fresh payload's header).</summary>
    public Guid ProtectingKeyId() => KeyIdOf(Protect("probe"));

    /// <summary>A payload's key id: the 16 bytes after the 4-byte magic header.</summary>
    public static Guid KeyIdOf(string payload) => new(WebEncoders.Base64UrlDecode(payload).AsSpan(4, 16));

    public async Task<HealthReportEntry> HealthAsync()
    {
        var report = await Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        return report.Entries["dpkeyring"];
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Host.StopAsync(TimeSpan.FromSeconds(5));
        }
        catch (InvalidOperationException)
        {
            // never started
        }

        Host.Dispose();
    }

    private static void Copy(DpkeyringOptions from, DpkeyringOptions to)
    {
        to.Url = from.Url;
        to.Ring = from.Ring;
        to.TokenFile = from.TokenFile;
        to.Token = from.Token;
        to.NodeId = from.NodeId;
        to.CacheDirectory = from.CacheDirectory;
        to.CaCertificateFile = from.CaCertificateFile;
        to.PollWait = from.PollWait;
        to.AllowInsecureHttp = from.AllowInsecureHttp;
        to.StartupTimeout = from.StartupTimeout;
    }
}

/// <summary>Collects every log line of a node, formatted, with its category, level and event id.</summary>
internal sealed class LogSink : ILoggerProvider
{
    public ConcurrentQueue<LogLine> Lines { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public IEnumerable<LogLine> Of(string category) => Lines.Where(l => l.Category == category);

    public string All => string.Join("\n", Lines.Select(l => $"{l.Level} {l.Category}[{l.EventId}] {l.Message} {l.Exception}"));

    public void Dispose()
    {
    }

    private sealed class Logger(LogSink sink, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            sink.Lines.Enqueue(new LogLine(category, logLevel, eventId.Id, formatter(state, exception), exception?.ToString()));
    }
}

internal sealed record LogLine(string Category, LogLevel Level, int EventId, string Message, string? Exception)
{
    /// <summary>When the line was logged (the wall clock, for reading a failed test's record).</summary>
    public DateTimeOffset At { get; } = DateTimeOffset.UtcNow;
}
