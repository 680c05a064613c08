using System.Diagnostics;
using System.Globalization;

namespace Dpkeyring.Bench.Node;

/// <summary>The node's memory after a forced full, compacting collection, as one <c>MEM</c> line.</summary>
internal static class MemoryReport
{
    /// <summary>
    /// <c>MEM managed=B working_set=B private=B rss_anon=B rss_shmem=B rss_file=B gc_committed=B threads=N
    /// allocated=B rss_anon_aggressive=B gc_committed_aggressive=B</c> (bytes), after a forced, blocking,
    /// compacting full collection: the managed heap (<see cref="GC.GetTotalMemory(bool)"/>); the resident
    /// set (<see cref="Environment.WorkingSet"/>); the private bytes (<see cref="Process.PrivateMemorySize64"/>);
    /// on Linux the resident set split three ways, from <c>/proc/self/status</c> (-1 elsewhere):
    /// <c>RssAnon</c> (heaps, stacks, runtime data; private), <c>RssShmem</c> (for .NET mostly the
    /// double-mapped JIT code and stubs; private too) and <c>RssFile</c> (mapped assemblies and native
    /// libraries, shared with every process that maps the same files); the memory the collector keeps
    /// committed (live objects and free space it has not returned to the system); the number of threads;
    /// the bytes allocated since the start. Then, after an aggressive collection (which returns the
    /// collector's free space to the system), <c>RssAnon</c> and the committed memory again: what the
    /// process needs, as opposed to what it holds.
    /// </summary>
    public static string Take()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        long managed = GC.GetTotalMemory(forceFullCollection: true);
        using var process = Process.GetCurrentProcess();
        string held = string.Create(
            CultureInfo.InvariantCulture,
            $"MEM managed={managed} working_set={Environment.WorkingSet} private={process.PrivateMemorySize64} rss_anon={StatusField("RssAnon:")} rss_shmem={StatusField("RssShmem:")} rss_file={StatusField("RssFile:")} "
            + $"gc_committed={GC.GetGCMemoryInfo().TotalCommittedBytes} threads={process.Threads.Count} allocated={GC.GetTotalAllocatedBytes(precise: true)}");

        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        return string.Create(
            CultureInfo.InvariantCulture,
            $"{held} rss_anon_aggressive={StatusField("RssAnon:")} gc_committed_aggressive={GC.GetGCMemoryInfo().TotalCommittedBytes}");
    }

    /// <summary>A field of <c>/proc/self/status</c> given in kB (such as <c>RssAnon:</c>), in bytes; -1 where there is none.</summary>
    private static long StatusField(string name)
    {
        const string Status = "/proc/self/status";
        if (!OperatingSystem.IsLinux() || !File.Exists(Status))
        {
            return -1;
        }

        foreach (string line in File.ReadLines(Status))
        {
            // "RssAnon:	   12345 kB"
            if (line.StartsWith(name, StringComparison.Ordinal))
            {
                string kilobytes = line[name.Length..].Trim().Split(' ')[0];
                return long.Parse(kilobytes, CultureInfo.InvariantCulture) * 1024;
            }
        }

        return -1;
    }
}
