using Dpkeyring.Testing;
using Xunit;

namespace Dpkeyring.AspNetCore.Tests;

/// <summary>A test class whose every test gets its own real <c>dpkeyring serve</c> (tests rotate, revoke and stop it).</summary>
public abstract class RealServerTest : IAsyncLifetime
{
    /// <summary>This test's server.</summary>
    protected DpkeyringServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await DpkeyringServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}
