using System.Globalization;

namespace Dpkeyring.Bench.Node;

/// <summary>The command line of the bench node.</summary>
/// <param name="Url">The dpkeyring server's base URL (package mode).</param>
/// <param name="TokenFile">The file holding the node token (package mode).</param>
/// <param name="NodeId">The node id reported to the server (<c>X-Node-Id</c>).</param>
/// <param name="CacheDirectory">The package's last-known-good folder, or the key folder without the package.</param>
/// <param name="WithoutPackage">Plain Data Protection with a file-system key folder: the memory baseline.</param>
/// <param name="Web">Also run Kestrel with one endpoint (a web node rather than a worker).</param>
/// <param name="Interval">The pause between two Protect calls.</param>
internal sealed record NodeArguments(
    string? Url,
    string? TokenFile,
    string NodeId,
    string? CacheDirectory,
    bool WithoutPackage,
    bool Web,
    TimeSpan Interval)
{
    /// <summary>How to call the program.</summary>
    public const string Usage =
        "usage: Dpkeyring.Bench.Node --url URL --token-file FILE [--node-id ID] [--cache-dir DIR] [--web] [--interval-ms N]\n"
        + "       Dpkeyring.Bench.Node --without-package [--cache-dir DIR] [--web] [--interval-ms N]\n"
        + "stdout: 'KEY <key id> <unix ms>' whenever the protecting key changes, 'RING <unix ms>' when the\n"
        + "package swaps in a new ring version, 'MEM ...' after a 'MEM' line on stdin. EOF on stdin stops it.";

    /// <summary>Parses the arguments; throws <see cref="ArgumentException"/> with a message for the user.</summary>
    public static NodeArguments Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        string? url = null, tokenFile = null, nodeId = null, cacheDirectory = null;
        bool withoutPackage = false, web = false;
        int intervalMs = 1;
        for (int i = 0; i < args.Count; i++)
        {
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--url":
                    url = Value();
                    break;
                case "--token-file":
                    tokenFile = Value();
                    break;
                case "--node-id":
                    nodeId = Value();
                    break;
                case "--cache-dir":
                    cacheDirectory = Value();
                    break;
                case "--interval-ms":
                    if (!int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out intervalMs) || intervalMs > 1000)
                    {
                        throw new ArgumentException("--interval-ms takes a whole number of milliseconds from 0 to 1000.");
                    }

                    break;
                case "--without-package":
                    withoutPackage = true;
                    break;
                case "--web":
                    web = true;
                    break;
                default:
                    throw new ArgumentException($"unknown argument '{args[i]}'.");
            }
        }

        if (!withoutPackage && (string.IsNullOrEmpty(url) || string.IsNullOrEmpty(tokenFile)))
        {
            throw new ArgumentException("--url and --token-file are required unless --without-package is given.");
        }

        return new NodeArguments(url, tokenFile, nodeId ?? "bench-1", cacheDirectory, withoutPackage, web, TimeSpan.FromMilliseconds(intervalMs));
    }
}
