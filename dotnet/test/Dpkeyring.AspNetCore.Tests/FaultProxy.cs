using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Dpkeyring.AspNetCore.Tests;

/// <summary>
/// Fault injection beside the real server: a loopback proxy that forwards to dpkeyring until told
/// to answer something else (what a broken proxy, a login page or a truncated transfer gives).
/// </summary>
internal sealed class FaultProxy : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly HttpClient _upstream = new(new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None });
    private readonly string _target;

    private FaultProxy(string target)
    {
        _target = target.TrimEnd('/');
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _app = builder.Build();
        _app.Run(HandleAsync);
    }

    /// <summary>Null: forward. Otherwise what every request gets instead.</summary>
    public Func<HttpContext, Task>? Fault { get; set; }

    /// <summary>How many requests were answered with the fault.</summary>
    public int Faulted => _faulted;

    public string Url { get; private set; } = string.Empty;

    private int _faulted;

    public static async Task<FaultProxy> StartAsync(string target)
    {
        var proxy = new FaultProxy(target);
        await proxy._app.StartAsync();
        proxy.Url = proxy._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return proxy;
    }

    public static Func<HttpContext, Task> Answer(int status, string contentType, byte[] body) => async context =>
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = contentType;
        await context.Response.Body.WriteAsync(body);
    };

    /// <summary>Never answers: holds each request until the client gives up (a server that hangs).</summary>
    public static Func<HttpContext, Task> Hold { get; } = async context =>
    {
        try
        {
            await Task.Delay(Timeout.Infinite, context.RequestAborted);
        }
        catch (OperationCanceledException)
        {
        }
    };

    public static Func<HttpContext, Task> Answer(int status, string contentType, string body) => Answer(status, contentType, Encoding.UTF8.GetBytes(body));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _upstream.Dispose();
    }

    private async Task HandleAsync(HttpContext context)
    {
        if (Fault is { } fault)
        {
            Interlocked.Increment(ref _faulted);
            await fault(context);
            return;
        }

        using var request = new HttpRequestMessage(new HttpMethod(context.Request.Method), _target + context.Request.Path + context.Request.QueryString);
        foreach (var name in new[] { "Authorization", "If-None-Match", "X-Node-Id", "Accept" })
        {
            if (context.Request.Headers.TryGetValue(name, out var value))
            {
                request.Headers.TryAddWithoutValidation(name, value.ToArray());
            }
        }

        using var response = await _upstream.SendAsync(request, context.RequestAborted);
        context.Response.StatusCode = (int)response.StatusCode;
        foreach (var header in response.Headers.Concat(response.Content.Headers))
        {
            if (header.Key is "ETag" or "X-Ring-Version" or "Content-Type" or "Warning")
            {
                context.Response.Headers[header.Key] = header.Value.ToArray();
            }
        }

        await response.Content.CopyToAsync(context.Response.Body);
    }
}
