using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Dpkeyring.AspNetCore;

/// <summary>Fills the defaults that depend on the machine and the application: the node id and the cache folder.</summary>
internal sealed class DpkeyringOptionsDefaults : IPostConfigureOptions<DpkeyringOptions>
{
    private readonly IHostEnvironment? _environment;

    public DpkeyringOptionsDefaults(IServiceProvider services) => _environment = (IHostEnvironment?)services.GetService(typeof(IHostEnvironment));

    public void PostConfigure(string? name, DpkeyringOptions options)
    {
        if (string.IsNullOrEmpty(options.NodeId))
        {
            options.NodeId = DefaultNodeId(Environment.MachineName);
        }

        if (string.IsNullOrEmpty(options.CacheDirectory))
        {
            options.CacheDirectory = DefaultCacheDirectory(_environment);
        }
    }

    /// <summary>The machine name, with any character the server would refuse replaced by '-'.</summary>
    internal static string DefaultNodeId(string machineName)
    {
        var id = new StringBuilder(Math.Min(machineName.Length, 128));
        foreach (char c in machineName.AsSpan(0, Math.Min(machineName.Length, 128)))
        {
            id.Append(DpkeyringOptionsValidator.IsNodeIdChar(c) ? c : '-');
        }

        return id.Length == 0 ? "node" : id.ToString();
    }

    /// <summary>
    /// <c>{local application data}/dpkeyring/{application name}-{hash of the content root}</c>: one
    /// folder per application (two sites on one server do not share it), never inside the content
    /// root (a deployment must not ship or overwrite it). Null when the system has no such folder.
    /// </summary>
    internal static string? DefaultCacheDirectory(IHostEnvironment? environment)
    {
        string root = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        if (string.IsNullOrEmpty(root) || !Path.IsPathFullyQualified(root))
        {
            return null;
        }

        string application = environment?.ApplicationName ?? Assembly.GetEntryAssembly()?.GetName().Name ?? "app";
        string contentRoot = environment?.ContentRootPath ?? AppContext.BaseDirectory;
        var safe = new StringBuilder();
        foreach (char c in application.AsSpan(0, Math.Min(application.Length, 64)))
        {
            safe.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '_');
        }

        string hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(contentRoot)))[..12].ToLowerInvariant();
        return Path.Combine(root, "dpkeyring", $"{safe}-{hash}");
    }
}
