using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Dpkeyring.Testing;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Xunit;
using Xunit.Abstractions;

namespace Dpkeyring.AspNetCore.Tests;

/// <summary>An https:// server with a certificate from a private CA (CaCertificateFile).</summary>
public sealed class TlsTests(ITestOutputHelper output) : IAsyncLifetime
{
    private string _work = null!;
    private string _caFile = null!;
    private DpkeyringServer _server = null!;

    public async Task InitializeAsync()
    {
        _work = Directory.CreateTempSubdirectory("dpkeyring-tls-").FullName;
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=dpkeyring test CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));

        using var serverKey = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", serverKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var leaf = request.Create(ca, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(7), [1, 2, 3, 4]);

        _caFile = Path.Combine(_work, "ca.pem");
        File.WriteAllText(_caFile, ca.ExportCertificatePem());
        var certFile = Path.Combine(_work, "server.pem");
        File.WriteAllText(certFile, leaf.ExportCertificatePem());
        var keyFile = Path.Combine(_work, "server.key");
        File.WriteAllText(keyFile, serverKey.ExportPkcs8PrivateKeyPem());
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        _server = await DpkeyringServer.StartAsync("--tls-cert", certFile, "--tls-key", keyFile);
    }

    public async Task DisposeAsync()
    {
        RealServerTest.WriteRecord(output, _server);
        await _server.DisposeAsync();
        Directory.Delete(_work, recursive: true);
    }

    [Fact]
    public async Task HttpsServerWithPrivateCa_NodeTrustingThatCa_ReadsTheRing()
    {
        Assert.StartsWith("https://", _server.Url, StringComparison.Ordinal);
        await using var node = await TestNode.StartAsync(_server, o => o.CaCertificateFile = _caFile);

        Assert.Equal("over TLS", node.Unprotect(node.Protect("over TLS")));
        Assert.Equal(HealthStatus.Healthy, (await node.HealthAsync()).Status);
    }

    [Fact]
    public async Task HttpsServerWithPrivateCa_NodeWithoutIt_DoesNotStart_AndSaysToSetCaCertificateFile()
    {
        await using var node = TestNode.Create(_server, o => o.StartupTimeout = TimeSpan.FromSeconds(5));

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => node.Host.StartAsync());

        Assert.Contains("TLS handshake failed", failure.Message, StringComparison.Ordinal);
        Assert.Contains("CaCertificateFile", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HttpsServer_NodeTrustingAnotherCa_DoesNotStart()
    {
        using var otherKey = RSA.Create(2048);
        var other = new CertificateRequest("CN=another CA", otherKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        other.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var otherCa = other.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var otherFile = Path.Combine(_work, "other-ca.pem");
        File.WriteAllText(otherFile, otherCa.ExportCertificatePem());
        await using var node = TestNode.Create(_server, o => { o.CaCertificateFile = otherFile; o.StartupTimeout = TimeSpan.FromSeconds(5); });

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => node.Host.StartAsync());
        Assert.Contains("TLS handshake failed", failure.Message, StringComparison.Ordinal);
    }
}
