using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Dpkeyring.Testing;

/// <summary>
/// The real <c>dpkeyring serve</c> for a test: its own data folder, a free loopback port, output
/// in log files, stopped and deleted when disposed. The binary is <c>DPKEYRING_BIN</c>, else one
/// built with <c>go build ./cmd/dpkeyring</c> where Go is installed, else
/// <c>../shared/bin/dpkeyring</c> beside the clone (prebuilt from main for machines without Go).
/// </summary>
public sealed partial class DpkeyringServer : IAsyncDisposable
{
    private static readonly SemaphoreSlim BuildLock = new(1, 1);
    private static string? _binary;

    private readonly string[] _extraArgs;
    private Process? _process;
    private int _port;
    private string _scheme = "http";

    private DpkeyringServer(string workDirectory, string[] extraArgs)
    {
        WorkDirectory = workDirectory;
        DataDirectory = Path.Combine(workDirectory, "data");
        _extraArgs = extraArgs;
    }

    /// <summary>A scratch folder of this server's test, deleted with it.</summary>
    public string WorkDirectory { get; }

    /// <summary>The server's <c>--data</c> folder (tokens, the embedded file store).</summary>
    public string DataDirectory { get; }

    /// <summary>The server's base URL, <c>http://127.0.0.1:PORT</c> (<c>https://</c> with <c>--tls-cert</c>).</summary>
    public string Url => $"{_scheme}://127.0.0.1:{_port}";

    /// <summary>The node token printed at the first start (every ring).</summary>
    public string NodeToken { get; private set; } = string.Empty;

    /// <summary>The admin token printed at the first start.</summary>
    public string AdminToken { get; private set; } = string.Empty;

    /// <summary>The server binary used.</summary>
    public static string Binary => _binary ?? throw new InvalidOperationException("call StartAsync first");

    /// <summary>Starts a server on a free port with a new data folder (the ring <c>default</c> gets its first key).</summary>
    public static async Task<DpkeyringServer> StartAsync(params string[] extraArgs)
    {
        await ResolveBinaryAsync().ConfigureAwait(false);
        var work = Directory.CreateTempSubdirectory("dpkeyring-test-").FullName;
        var server = new DpkeyringServer(work, extraArgs);
        await server.StartProcessAsync("127.0.0.1:0").ConfigureAwait(false);

        // The tokens are printed on stdout before the listening line on stderr; the two pipes are
        // read separately, so the tokens may reach their log a moment after it.
        string output = string.Empty;
        try
        {
            await Eventually.UntilAsync(
                () =>
                {
                    output = server.Log("stdout");
                    server.AdminToken = TokenLine("admin").Match(output).Groups[1].Value;
                    server.NodeToken = TokenLine("node").Match(output).Groups[1].Value;
                    return server.NodeToken.Length > 0 && server.AdminToken.Length > 0;
                },
                "dpkeyring serve printed its tokens").ConfigureAwait(false);
        }
        catch (TimeoutException ex)
        {
            throw new InvalidOperationException("dpkeyring serve printed no tokens:\n" + output, ex);
        }

        return server;
    }

    /// <summary>Stops the server (the nodes then find it unreachable); its data stays.</summary>
    public async Task StopAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync().ConfigureAwait(false);
        }

        _process?.Dispose();
        _process = null;
    }

    /// <summary>Starts the stopped server again on the same port and data folder.</summary>
    public Task RestartAsync() => StartProcessAsync($"127.0.0.1:{_port}");

    /// <summary>Writes a token into a file readable only by this user, as a node's token file; returns its path.</summary>
    public string WriteTokenFile(string token, string? name = null)
    {
        var path = Path.Combine(WorkDirectory, name ?? $"token-{Guid.NewGuid():N}");
        File.WriteAllText(path, token + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        return path;
    }

    /// <summary><c>dpkeyring token create</c>: a new token of <paramref name="role"/>, for every ring or one.</summary>
    public async Task<string> CreateTokenAsync(string name, string role = "node", string? ring = null)
    {
        var args = new List<string> { "token", "create", "--role", role, "--name", name, "--data", DataDirectory };
        if (ring is not null)
        {
            args.AddRange(["--ring", ring]);
        }

        var token = (await RunAsync(args.ToArray()).ConfigureAwait(false)).Trim();

        // The server reads new tokens within a second: wait until it knows this one.
        using var client = new HttpClient();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        await Eventually.UntilAsync(
            async () => (await client.GetAsync(new Uri($"{Url}/v1/rings")).ConfigureAwait(false)).IsSuccessStatusCode,
            $"the server accepts the new token {name}").ConfigureAwait(false);
        return token;
    }

    /// <summary><c>dpkeyring token revoke</c>; a running server refuses the token within a second (with <paramref name="token"/>, this waits for that).</summary>
    public async Task RevokeTokenAsync(string name, string? token = null)
    {
        await RunAsync("token", "revoke", name, "--data", DataDirectory).ConfigureAwait(false);
        if (token is null)
        {
            return;
        }

        using var client = new HttpClient();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        await Eventually.UntilAsync(
            async () => (await client.GetAsync(new Uri($"{Url}/v1/rings")).ConfigureAwait(false)).StatusCode == System.Net.HttpStatusCode.Unauthorized,
            $"the server refuses the revoked token {name}").ConfigureAwait(false);
    }

    /// <summary>
    /// <c>dpkeyring unprotect</c> against the server's store: the plaintext of a payload a node
    /// protected with <c>CreateProtector(purposes)</c> under application name <paramref name="appName"/>.
    /// </summary>
    public async Task<string> UnprotectAsync(string payload, string? appName, params string[] purposes)
    {
        var args = new List<string> { "unprotect", "--keys", "file:" + DataDirectory, "--app-name", appName ?? string.Empty };
        foreach (var purpose in purposes)
        {
            args.AddRange(["--purpose", purpose]);
        }

        args.Add(payload);
        return await RunAsync(args.ToArray()).ConfigureAwait(false);
    }

    /// <summary><c>GET /v1/rings/{ring}/status</c> with the admin token.</summary>
    public async Task<JsonElement> StatusAsync(string ring = "default")
    {
        using var client = AdminClient();
        var json = await client.GetStringAsync(new Uri($"{Url}/v1/rings/{ring}/status")).ConfigureAwait(false);
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    /// <summary>The server's current default key id.</summary>
    public async Task<Guid> DefaultKeyIdAsync(string ring = "default") =>
        Guid.Parse((await StatusAsync(ring).ConfigureAwait(false)).GetProperty("default_key").GetProperty("key_id").GetString()!);

    /// <summary><c>POST /v1/rings/{ring}/rotate</c>; an emergency rotation with <paramref name="immediate"/> and <paramref name="revokePrevious"/>.</summary>
    public async Task<JsonElement> RotateAsync(bool immediate = true, bool revokePrevious = false, string? reason = null, string ring = "default")
    {
        using var client = AdminClient();
        var body = JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["immediate"] = immediate,
            ["revoke_previous"] = revokePrevious,
            ["reason"] = reason ?? (revokePrevious ? "test: key leaked" : null),
        });
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await client.PostAsync(new Uri($"{Url}/v1/rings/{ring}/rotate"), content).ConfigureAwait(false);
        var text = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"rotate answered {(int)response.StatusCode}: {text}");
        }

        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>
    /// Starts <c>dpkeyring agent</c> keeping <paramref name="directory"/> equal to the ring; the
    /// returned handle stops it. Its output goes to a log file in the work folder.
    /// </summary>
    public async Task<IAsyncDisposable> StartAgentAsync(string directory, string tokenFile, string ring = "default")
    {
        var log = Path.Combine(WorkDirectory, $"agent-{Guid.NewGuid():N}.log");
        var info = new ProcessStartInfo(Binary) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { "agent", "--server", Url, "--token-file", tokenFile, "--ring", ring, "--dir", directory, "--node-id", "agent-test" })
        {
            info.ArgumentList.Add(arg);
        }

        var process = Process.Start(info)!;
        var writer = new StreamWriter(log) { AutoFlush = true };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (writer)
                {
                    writer.WriteLine(e.Data);
                }
            }
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        // The agent records the version in its state file after writing the version's files.
        await Eventually.UntilAsync(() => File.Exists(Path.Combine(directory, ".dpkeyring-agent.json")), "the agent wrote the ring").ConfigureAwait(false);
        return new Stopper(process, writer);
    }

    /// <summary>Runs a <c>dpkeyring</c> command; returns its stdout, or throws with its stderr when it fails.</summary>
    public static async Task<string> RunAsync(params string[] args)
    {
        await ResolveBinaryAsync().ConfigureAwait(false);
        var info = new ProcessStartInfo(Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"dpkeyring {args[0]} exited {process.ExitCode}: {await stderr.ConfigureAwait(false)}");
        }

        return await stdout.ConfigureAwait(false);
    }

    /// <summary>The server's output so far (stdout or stderr), for a failing test's message.</summary>
    public string Log(string stream = "stderr") => File.Exists(LogPath(stream)) ? File.ReadAllText(LogPath(stream)) : string.Empty;

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        try
        {
            Directory.Delete(WorkDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private sealed class Stopper(Process process, StreamWriter writer) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync().ConfigureAwait(false);
            }

            process.Dispose();
            await writer.DisposeAsync().ConfigureAwait(false);
        }
    }

    private HttpClient AdminClient()
    {
        var client = new HttpClient();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminToken);
        return client;
    }

    private string LogPath(string stream) => Path.Combine(WorkDirectory, $"serve.{stream}.log");

    private async Task StartProcessAsync(string addr)
    {
        var stdoutPath = LogPath("stdout");
        var stderrPath = LogPath("stderr");
        var info = new ProcessStartInfo(Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = WorkDirectory,
        };
        foreach (var arg in new[] { "serve", "--addr", addr, "--data", DataDirectory }.Concat(_extraArgs))
        {
            info.ArgumentList.Add(arg);
        }

        var stdout = new StreamWriter(stdoutPath, append: true) { AutoFlush = true };
        var stderr = new StreamWriter(stderrPath, append: true) { AutoFlush = true };
        var listening = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (stdout)
                {
                    stdout.WriteLine(e.Data);
                }
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (stderr)
            {
                stderr.WriteLine(e.Data);
            }

            var match = ListeningLine().Match(e.Data);
            if (match.Success)
            {
                _scheme = match.Groups[2].Value;
                listening.TrySetResult(int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture));
            }
        };
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException("dpkeyring serve exited at start"));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        try
        {
            _port = await listening.Task.WaitAsync(TimeSpan.FromSeconds(20)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
        {
            throw new InvalidOperationException($"dpkeyring serve did not start: {ex.Message}\n{Log()}", ex);
        }
    }

    private static async Task ResolveBinaryAsync()
    {
        if (_binary is not null)
        {
            return;
        }

        await BuildLock.WaitAsync().ConfigureAwait(false);
        try
        {
            _binary ??= await FindOrBuildAsync().ConfigureAwait(false);
        }
        finally
        {
            BuildLock.Release();
        }
    }

    private static async Task<string> FindOrBuildAsync()
    {
        if (Environment.GetEnvironmentVariable("DPKEYRING_BIN") is { Length: > 0 } fromEnv)
        {
            return File.Exists(fromEnv) ? Path.GetFullPath(fromEnv) : throw new InvalidOperationException($"DPKEYRING_BIN={fromEnv} does not exist");
        }

        var repo = RepositoryRoot();
        if (FindOnPath("go") is { } go)
        {
            var output = Path.Combine(Directory.CreateTempSubdirectory("dpkeyring-bin-").FullName, OperatingSystem.IsWindows() ? "dpkeyring.exe" : "dpkeyring");
            var info = new ProcessStartInfo(go) { WorkingDirectory = repo, UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var arg in new[] { "build", "-o", output, "./cmd/dpkeyring" })
            {
                info.ArgumentList.Add(arg);
            }

            using var build = Process.Start(info)!;
            var errors = build.StandardError.ReadToEndAsync();
            _ = build.StandardOutput.ReadToEndAsync();
            await build.WaitForExitAsync().ConfigureAwait(false);
            return build.ExitCode == 0 ? output : throw new InvalidOperationException("go build ./cmd/dpkeyring failed: " + await errors.ConfigureAwait(false));
        }

        var prebuilt = Path.GetFullPath(Path.Combine(repo, "..", "shared", "bin", "dpkeyring"));
        return File.Exists(prebuilt)
            ? prebuilt
            : throw new InvalidOperationException($"no dpkeyring server: set DPKEYRING_BIN, install Go, or provide {prebuilt}");
    }

    /// <summary>The clone's root: the folder above the test binaries that holds go.mod and dotnet/.</summary>
    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "go.mod")) && Directory.Exists(Path.Combine(dir.FullName, "dotnet")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("cannot find the repository root (go.mod beside dotnet/) above " + AppContext.BaseDirectory);
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, OperatingSystem.IsWindows() ? name + ".exe" : name))
            .FirstOrDefault(File.Exists);

    private static Regex TokenLine(string role) => new($@"^\s+{role}\s+(dpk_\S+)", RegexOptions.Multiline);

    [GeneratedRegex("\"msg\":\"listening\".*\"addr\":\"[^\"]*:(\\d+)\".*\"url\":\"(https?)://")]
    private static partial Regex ListeningLine();
}
