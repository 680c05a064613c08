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
    /// Reads a file that must be readable only by this user, from a folder others cannot write.
    /// Returns null with the reason it was refused: such a file may have been planted (keys of an
    /// attacker's choosing) or read by someone else. The permissions are checked on the opened
    /// file, so it cannot be swapped between the check and the read.
    /// </summary>
    public static byte[]? ReadOwnerOnly(string path, out string? refusal)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        refusal = new FileInfo(path).LinkTarget is not null ? "it is a symbolic link"
            : new DirectoryInfo(directory).LinkTarget is not null ? $"its folder {directory} is a symbolic link"
            : !OperatingSystem.IsWindows() && (File.GetUnixFileMode(directory) & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0
                ? $"its folder {directory} can be written by other users (mode {Convert.ToString((int)File.GetUnixFileMode(directory), 8)}, expected 700)"
            : null;
        if (refusal is not null)
        {
            return null;
        }

        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        if (OperatingSystem.IsWindows())
        {
            using var stream = new FileStream(handle, FileAccess.Read);
            refusal = WindowsAclProblem(stream.GetAccessControl());
        }
        else
        {
            var mode = File.GetUnixFileMode(handle);
            refusal = (mode & OthersAndGroup) != 0
                ? $"its permissions let other users read or write it (mode {Convert.ToString((int)mode, 8)}, expected 600)"
                : null;
        }

        long length = RandomAccess.GetLength(handle);
        if (refusal is null && length > RingSnapshot.MaxDocumentBytes)
        {
            refusal = $"it is larger than {RingSnapshot.MaxDocumentBytes / 1024 / 1024} MiB";
        }

        if (refusal is not null)
        {
            return null;
        }

        var content = new byte[length];
        int read = 0;
        while (read < content.Length)
        {
            int n = RandomAccess.Read(handle, content.AsSpan(read), read);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        return read == content.Length ? content : content[..read];
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

    /// <summary>
    /// Why a file's ACL does not make it ours alone: an owner other than this user (an owner can
    /// rewrite the ACL), or an allow entry that gives anyone else more than reading its attributes
    /// (generic rights included). SYSTEM and Administrators are trusted, as on any Windows file.
    /// </summary>
    [SupportedOSPlatform("windows")]
    private static string? WindowsAclProblem(FileSecurity security)
    {
        var user = CurrentUser();
        if (security.GetOwner(typeof(SecurityIdentifier)) is not SecurityIdentifier owner || !Trusted(owner, user))
        {
            return "it is not owned by the application's user";
        }

        const FileSystemRights harmless = FileSystemRights.Synchronize | FileSystemRights.ReadAttributes
            | FileSystemRights.ReadExtendedAttributes | FileSystemRights.ReadPermissions;
        foreach (FileSystemAccessRule rule in security.GetAccessRules(includeExplicit: true, includeInherited: true, typeof(SecurityIdentifier)))
        {
            var sid = (SecurityIdentifier)rule.IdentityReference;
            if (rule.AccessControlType == AccessControlType.Allow && !Trusted(sid, user) && (rule.FileSystemRights & ~harmless) != 0)
            {
                return $"its ACL gives {sid.Value} access to it (expected only the application's user)";
            }
        }

        return null;
    }

    [SupportedOSPlatform("windows")]
    private static bool Trusted(SecurityIdentifier sid, SecurityIdentifier user) =>
        sid == user || sid.IsWellKnown(WellKnownSidType.LocalSystemSid) || sid.IsWellKnown(WellKnownSidType.BuiltinAdministratorsSid);
}
