using Xunit;

namespace Dpkeyring.AspNetCore.Tests;

/// <summary>A fact that needs Unix (file modes, symbolic links, FIFOs): shown as skipped on Windows, never passed there without running.</summary>
public sealed class UnixFactAttribute : FactAttribute
{
    public UnixFactAttribute()
    {
        if (OperatingSystem.IsWindows())
        {
            Skip = UnixOnly.Reason;
        }
    }
}

/// <summary>A theory that needs Unix: shown as skipped on Windows.</summary>
public sealed class UnixTheoryAttribute : TheoryAttribute
{
    public UnixTheoryAttribute()
    {
        if (OperatingSystem.IsWindows())
        {
            Skip = UnixOnly.Reason;
        }
    }
}

internal static class UnixOnly
{
    public const string Reason = "needs Unix file modes, symbolic links or FIFOs (the Windows ACL code is not covered by a test yet)";
}
