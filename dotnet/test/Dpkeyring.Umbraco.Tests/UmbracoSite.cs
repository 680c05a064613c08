using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Umbraco.Cms.Core.Cache;
using Umbraco.Cms.Core.Composing;
using Umbraco.Cms.Core.DependencyInjection;
using Umbraco.Cms.Core.Logging;

namespace Dpkeyring.Umbraco.Tests;

/// <summary>
/// An Umbraco site as far as Umbraco.Cms.Core takes it: a content root with an appsettings.json,
/// a <see cref="WebApplicationBuilder"/> reading it, Umbraco's own <see cref="UmbracoBuilder"/>
/// on its services, and Umbraco's own composer discovery (<c>AddComposers()</c>, which scans the
/// assemblies that reference Umbraco and so finds the package's composer).
/// </summary>
internal sealed class UmbracoSite : IAsyncDisposable
{
    private readonly ILoggerFactory _builderLoggerFactory;

    private UmbracoSite(string contentRoot, WebApplicationBuilder builder, FakeLoggerProvider logs, ILoggerFactory builderLoggerFactory)
    {
        ContentRoot = contentRoot;
        Builder = builder;
        Logs = logs;
        _builderLoggerFactory = builderLoggerFactory;
    }

    /// <summary>The site's content root (where appsettings.json is).</summary>
    public string ContentRoot { get; }

    /// <summary>The builder, after the composers ran.</summary>
    public WebApplicationBuilder Builder { get; }

    /// <summary>What Umbraco's builder logger factory received while composing.</summary>
    public FakeLoggerProvider Logs { get; }

    /// <summary>The service registrations as they were just before Umbraco ran the composers.</summary>
    public IReadOnlyList<ServiceDescriptor> BeforeComposers { get; private set; } = [];

    /// <summary>The service registrations just after the composers ran (before collection builders register).</summary>
    public IReadOnlyList<ServiceDescriptor> AfterComposers { get; private set; } = [];

    /// <summary>The built application, once <see cref="Build"/> ran.</summary>
    public WebApplication? App { get; private set; }

    /// <summary>The log lines of this package while composing.</summary>
    public IReadOnlyList<FakeLogRecord> PackageLogLines =>
        Logs.Collector.GetSnapshot().Where(r => r.Category == "Dpkeyring.Umbraco").ToList();

    /// <summary>
    /// Writes <paramref name="appsettings"/> as the content root's appsettings.json and composes
    /// the site the way <c>CreateUmbracoBuilder()...AddComposers()</c> does.
    /// </summary>
    /// <param name="appsettings">The appsettings.json content, as an object to serialize.</param>
    /// <param name="beforeComposers">What the application's Program.cs does before the composers run.</param>
    /// <param name="afterComposers">What the application's Program.cs does after <c>CreateUmbracoBuilder()...Build()</c>.</param>
    public static UmbracoSite Compose(
        object appsettings,
        Action<IServiceCollection, IConfiguration>? beforeComposers = null,
        Action<IServiceCollection, IConfiguration>? afterComposers = null)
    {
        string contentRoot = Directory.CreateTempSubdirectory("dpkeyring-umbraco-site-").FullName;
        File.WriteAllText(Path.Combine(contentRoot, "appsettings.json"), JsonSerializer.Serialize(appsettings));

        WebApplicationBuilder builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = [],
            ContentRootPath = contentRoot,
            EnvironmentName = "Production",
        });

        // Umbraco's AddBackOffice()/AddWebsite() call AddDataProtection() before AddComposers().
        builder.Services.AddDataProtection();
        beforeComposers?.Invoke(builder.Services, builder.Configuration);

        var logs = new FakeLoggerProvider();
        ILoggerFactory loggerFactory = LoggerFactory.Create(logging => logging.SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Trace).AddProvider(logs));
        var typeFinder = new TypeFinder(
            loggerFactory.CreateLogger<TypeFinder>(),
            new DefaultUmbracoAssemblyProvider(typeof(UmbracoSite).Assembly, loggerFactory),
            []);
        var typeLoader = new TypeLoader(typeFinder, loggerFactory.CreateLogger<TypeLoader>());

#if NET10_0_OR_GREATER
        var umbraco = new UmbracoBuilder(builder.Services, builder.Configuration, typeLoader, loggerFactory, new NoopProfiler(), AppCaches.NoCache);
#else
        var umbraco = new UmbracoBuilder(builder.Services, builder.Configuration, typeLoader, loggerFactory, new NoopProfiler(), AppCaches.NoCache, hostingEnvironment: null);
#endif

        var site = new UmbracoSite(contentRoot, builder, logs, loggerFactory)
        {
            BeforeComposers = builder.Services.ToList(),
        };
        try
        {
            umbraco.AddComposers();
        }
        catch
        {
            // The composer refused the configuration: nothing will dispose this site, so clean up here.
            loggerFactory.Dispose();
            Directory.Delete(contentRoot, recursive: true);
            throw;
        }

        site.AfterComposers = builder.Services.ToList();
        umbraco.Build();
        afterComposers?.Invoke(builder.Services, builder.Configuration);
        return site;
    }

    /// <summary>Builds the application (the site's service provider); does not start it.</summary>
    public WebApplication Build()
    {
        Builder.WebHost.UseUrls("http://127.0.0.1:0");
        App = Builder.Build();
        return App;
    }

    public async ValueTask DisposeAsync()
    {
        if (App is not null)
        {
            await App.DisposeAsync();
        }

        _builderLoggerFactory.Dispose();
        Logs.Dispose();
        try
        {
            Directory.Delete(ContentRoot, recursive: true);
        }
        catch (IOException)
        {
            // A file still held open; the temp folder is cleaned by the OS.
        }
    }
}
