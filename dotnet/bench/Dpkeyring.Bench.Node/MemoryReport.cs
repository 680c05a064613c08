using System.Diagnostics;
using System.Globalization;

namespace Dpkeyring.Bench.Node;

/// <summary>The node's memory after a forced full, compacting collection, as one <c>MEM</c> line.</summary>
internal static class MemoryReport
{
    /// <summary>
    /// <c>MEM managed=B working_set=B private=B rss_anon=B</c>, in bytes: the managed heap after a full
    /// collection (<see cref="GC.GetTotalMemory(bool)"/>), the resident set
    /// (<see cref="Environment.WorkingSet"/>), the private bytes (<see cref="Process.PrivateMemorySize64"/>)
    /// and, on Linux, the resident anonymous memory (<c>RssAnon</c> of <c>/proc/self/status</c>; -1 elsewhere).
    /// </summary>
    public static string Take()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        long managed = GC.GetTotalMemory(forceFullCollection: true);
        using var process = Process.GetCurrentProcess();
        return string.Create(
            CultureInfo.InvariantCulture,
            $"MEM managed={managed} working_set={Environment.WorkingSet} private={process.PrivateMemorySize64} rss_anon={RssAnon()}");
    }

    /// <summary><c>RssAnon</c> of <c>/proc/self/status</c> in bytes, or -1 where there is none.</summary>
    private static long RssAnon()
    {
        const string Status = "/proc/self/status";
        if (!OperatingSystem.IsLinux() || !File.Exists(Status))
        {
            return -1;
        }

        foreach (string line in File.ReadLines(Status))
        {
            // "RssAnon:	   12345 kB"
            if (line.StartsWith("RssAnon:", StringComparison.Ordinal))
            {
                string kilobytes = line["RssAnon:".Length..].Trim().Split(' ')[0];
                return long.Parse(kilobytes, CultureInfo.InvariantCulture) * 1024;
            }
        }

        return -1;
    }
}
