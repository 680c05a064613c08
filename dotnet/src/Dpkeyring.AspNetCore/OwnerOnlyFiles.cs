using System.Runtime.Versioning;
using System.Security.AccessControl;
using System.Security.Principal;

namespace Dpkeyring.AspNetCore;

/// <summary>
/// Files only the application's user can read: mode 0600 in a 0700 folder on Unix, an ACL that
/// grants only the current user on Windows. Written atomically (temporary file, flush to disk,
/// rename), so a crash leaves the old copy or the new one, never half of one.
/// </summary>
internal static class OwnerOnlyFiles
{
    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode FileMode600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OthersAndGroup = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>Creates the folder readable only by this user, or restricts an existing one (which fails unless this user owns it).</summary>
    public static void EnsureDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            var info = new DirectoryInfo(directory);
            if (!info.Exists)
            {
                info.Create(WindowsDirectoryAcl());
            }
            else
            {
                info.SetAccessControl(WindowsDirectoryAcl());
            }

            return;
        }

        if (!Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory, DirectoryMode);
        }

        if ((File.GetUnixFileMode(directory) & OthersAndGroup) != 0)
        {
            File.SetUnixFileMode(directory, DirectoryMode);
        }
    }

    /// <summary>Replaces <paramref name="path"/> with <paramref name="content"/> atomically, readable only by this user.</summary>
    public static void WriteAtomic(string path, byte[] content)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = CreateNew(temp))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>
    /// Reads a file that must be readable only by this user. Returns the reason it was refused:
    /// a file others can read or write may have been planted or read by someone else.
    /// </summary>
    public static byte[]? ReadOwnerOnly(string path, out string? refusal)
    {
        if (OperatingSystem.IsWindows())
        {
            refusal = WindowsAclProblem(path);
        }
        else
        {
            var mode = File.GetUnixFileMode(path);
            refusal = (mode & OthersAndGroup) != 0
                ? $"its permissions let other users read or write it (mode {Convert.ToString((int)mode, 8)}, expected 600)"
                : null;
        }

        if (refusal is not null)
        {
            return null;
        }

        var info = new FileInfo(path);
        if (info.Length > RingSnapshot.MaxDocumentBytes)
        {
            refusal = $"it is larger than {RingSnapshot.MaxDocumentBytes / 1024 / 1024} MiB";
            return null;
        }

        return File.ReadAllBytes(path);
    }

    private static FileStream CreateNew(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return new FileInfo(path).Create(FileMode.CreateNew, FileSystemRights.Read | FileSystemRights.Write | FileSystemRights.Delete, FileShare.None, 4096, FileOptions.None, WindowsFileAcl());
        }

        return new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            UnixCreateMode = FileMode600,
        });
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    [SupportedOSPlatform("windows")]
    private static SecurityIdentifier CurrentUser()
    {
        using var identity = WindowsIdentity.GetCurrent();
        return identity.User ?? throw new InvalidOperationException("The current Windows identity has no user SID.");
    }

    [SupportedOSPlatform("windows")]
    private static FileSecurity WindowsFileAcl()
    {
        var security = new FileSecurity();
        security.SetAccessRuleProtection(isProtected: true, preserveInheritance: false);
        security.AddAccessRule(new FileSystemAccessRule(CurrentUser(), FileSystemRights.FullControl, AccessControlType.Allow));
        return security;
    }

    [SupportedOSPlatform("windows")]
    private static DirectorySecurity WindowsDirectoryAcl()
    {
        var security = new DirectorySecurity();
        security.SetAccessRuleProtection(isProtected: true, preserveInheritance: false);
        security.AddAccessRule(new FileSystemAccessRule(
            CurrentUser(),
            FileSystemRights.FullControl,
            InheritanceFlags.ContainerInherit | InheritanceFlags.ObjectInherit,
            PropagationFlags.None,
            AccessControlType.Allow));
        return security;
    }

    [SupportedOSPlatform("windows")]
    private static string? WindowsAclProblem(string path)
    {
        var user = CurrentUser();
        var rules = new FileInfo(path).GetAccessControl().GetAccessRules(includeExplicit: true, includeInherited: true, typeof(SecurityIdentifier));
        foreach (FileSystemAccessRule rule in rules)
        {
            var sid = (SecurityIdentifier)rule.IdentityReference;
            bool trusted = sid == user
                || sid.IsWellKnown(WellKnownSidType.LocalSystemSid)
                || sid.IsWellKnown(WellKnownSidType.BuiltinAdministratorsSid);
            if (rule.AccessControlType == AccessControlType.Allow && !trusted
                && (rule.FileSystemRights & (FileSystemRights.ReadData | FileSystemRights.WriteData)) != 0)
            {
                return $"its ACL lets {sid.Value} read or write it (expected only the application's user)";
            }
        }

        return null;
    }
}
