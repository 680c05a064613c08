using Dpkeyring.Testing;

namespace Dpkeyring.Umbraco.Tests;

/// <summary>One real <c>dpkeyring serve</c> for the tests of a class, and a node token file for it.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    private DpkeyringServer? _server;

    public DpkeyringServer Server => _server ?? throw new InvalidOperationException("The server has not started.");

    /// <summary>A file holding the node token, as a site would have it.</summary>
    public string TokenFile { get; private set; } = "";

    public async Task InitializeAsync()
    {
        _server = await DpkeyringServer.StartAsync();
        TokenFile = _server.WriteTokenFile(_server.NodeToken);
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
