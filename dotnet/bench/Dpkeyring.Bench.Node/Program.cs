// A Data Protection node for dotnet/bench/rotation-latency.sh. It reads its key ring from a
// dpkeyring server through Dpkeyring.AspNetCore (or, with --without-package, from a local folder,
// as the memory baseline), protects a payload every millisecond and prints on stdout:
//   KEY <key id> <unix ms>   the first payload protected with a new key
//   RING <unix ms>           the package took a new ring version into use (package mode only)
//   MEM managed=... ...      answer to a "MEM" line on stdin
//   READY <unix ms>          the host has started
// With --web it is also an ASP.NET Core application (Kestrel on a free loopback port), for the
// memory comparison. It stops at the end of stdin, on SIGTERM or on Ctrl+C.
using Dpkeyring.AspNetCore;
using Dpkeyring.Bench.Node;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

NodeArguments arguments;
try
{
    arguments = NodeArguments.Parse(args);
}
catch (ArgumentException ex)
{
    await Console.Error.WriteLineAsync($"Dpkeyring.Bench.Node: {ex.Message}\n{NodeArguments.Usage}").ConfigureAwait(false);
    return 2;
}

TextWriter output = Console.Out; // Synchronized and flushed after every line.
using var ringChanges = arguments.WithoutPackage ? null : new RingChangeListener(output);

using IHost host = arguments.Web ? BuildWebNode(arguments) : BuildConsoleNode(arguments);
try
{
    await host.StartAsync().ConfigureAwait(false);
}
catch (Exception ex) when (ex is OptionsValidationException or InvalidOperationException)
{
    // A wrong setting or no ring: the host has logged the details; one line for the driver.
    await Console.Error.WriteLineAsync($"Dpkeyring.Bench.Node: the host did not start: {ex.Message}").ConfigureAwait(false);
    return 1;
}

var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
output.WriteLine($"READY {BenchClock.Now()}");

// Commands on stdin; its end (the driver went away) stops the node.
var commands = new Thread(() =>
{
    while (Console.In.ReadLine() is { } line)
    {
        if (line.Trim() == "MEM")
        {
            output.WriteLine(MemoryReport.Take());
        }
    }

    lifetime.StopApplication();
})
{
    IsBackground = true,
    Name = "bench commands",
};
commands.Start();

var watcher = new KeyWatcher(host.Services.GetRequiredService<IDataProtectionProvider>(), arguments.Interval, output);
var loop = new Thread(() => watcher.Run(lifetime.ApplicationStopping)) { Name = "bench protect loop" };
loop.Start();

await host.WaitForShutdownAsync().ConfigureAwait(false);
loop.Join();
return 0;

// A worker: the generic host alone (the mode the script measures latency with).
static IHost BuildConsoleNode(NodeArguments arguments)
{
    var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { ApplicationName = "bench" });
    AddServices(builder.Services, builder.Logging, arguments);
    return builder.Build();
}

// A web node: Kestrel on a free loopback port with one endpoint, so that the memory baseline
// already holds what every ASP.NET Core application loads (sockets, the HTTP server, routing).
static IHost BuildWebNode(NodeArguments arguments)
{
    var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "bench", Args = [] });
    builder.WebHost.UseUrls("http://127.0.0.1:0");
    AddServices(builder.Services, builder.Logging, arguments);
    var app = builder.Build();
    app.MapGet("/", () => "ok");
    return app;
}

// Data Protection from dpkeyring, or (the baseline) from a local folder; logging to stderr.
static void AddServices(IServiceCollection services, ILoggingBuilder logging, NodeArguments arguments)
{
    // Warnings and errors (the package's included) go to stderr, so stdout carries only the bench lines.
    logging.ClearProviders();
    logging.SetMinimumLevel(LogLevel.Warning);
    logging.AddSimpleConsole(o => o.SingleLine = true);
    services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);

    var dataProtection = services.AddDataProtection().SetApplicationName("bench");
    if (arguments.WithoutPackage)
    {
        string keys = arguments.CacheDirectory ?? Directory.CreateTempSubdirectory("dpkeyring-bench-keys-").FullName;
        dataProtection.PersistKeysToFileSystem(new DirectoryInfo(keys));
    }
    else
    {
        dataProtection.PersistKeysToDpkeyring(o =>
        {
            o.Url = arguments.Url;
            o.TokenFile = arguments.TokenFile;
            o.NodeId = arguments.NodeId;
            o.CacheDirectory = arguments.CacheDirectory is { } cache ? Path.GetFullPath(cache) : null;
            o.PollWait = TimeSpan.FromSeconds(60);
        });
    }
}
