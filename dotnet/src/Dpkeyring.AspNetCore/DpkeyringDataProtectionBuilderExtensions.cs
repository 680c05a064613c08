using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Dpkeyring.AspNetCore;

/// <summary>
/// Makes a node read its Data Protection key ring from dpkeyring, the ring's only writer: the node
/// never creates, stores or revokes a key, and follows every rotation and revocation within a second.
/// </summary>
public static class DpkeyringDataProtectionBuilderExtensions
{
    /// <summary>
    /// Reads the key ring from a dpkeyring server, with options bound from configuration (the
    /// <c>Dpkeyring</c> section by convention: <c>Url</c>, <c>TokenFile</c>, <c>Ring</c>, …).
    /// Turns automatic key generation off, long-polls the server in the background, and keeps a
    /// last-known-good copy so the node starts while the server is away.
    /// </summary>
    /// <param name="builder">The Data Protection builder.</param>
    /// <param name="configuration">The configuration section holding <see cref="DpkeyringOptions"/>.</param>
    /// <returns>The builder.</returns>
    public static IDataProtectionBuilder PersistKeysToDpkeyring(this IDataProtectionBuilder builder, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configuration);
        builder.Services.AddOptions<DpkeyringOptions>().Bind(configuration);
        string prefix = configuration is IConfigurationSection section ? section.Path + ":" : "DpkeyringOptions.";
        return AddServer(builder, prefix);
    }

    /// <summary>
    /// Reads the key ring from a dpkeyring server, with options set in code. Turns automatic key
    /// generation off, long-polls the server in the background, and keeps a last-known-good copy so
    /// the node starts while the server is away.
    /// </summary>
    /// <param name="builder">The Data Protection builder.</param>
    /// <param name="configure">Sets <see cref="DpkeyringOptions"/>: at least <c>Url</c> and <c>TokenFile</c> (or <c>Token</c>).</param>
    /// <returns>The builder.</returns>
    public static IDataProtectionBuilder PersistKeysToDpkeyring(this IDataProtectionBuilder builder, Action<DpkeyringOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.AddOptions<DpkeyringOptions>().Configure(configure);
        return AddServer(builder, "DpkeyringOptions.");
    }

    /// <summary>
    /// Reads the key ring from the folder a <c>dpkeyring agent</c> keeps beside the node, read-only,
    /// and reloads it on every change in the folder: a rotation or revocation the agent writes takes
    /// effect at once instead of at ASP.NET Core's next daily refresh. Automatic key generation is
    /// turned off.
    /// </summary>
    /// <param name="builder">The Data Protection builder.</param>
    /// <param name="directory">The agent's folder (its <c>--dir</c>).</param>
    /// <returns>The builder.</returns>
    public static IDataProtectionBuilder UseDpkeyringAgentFolder(this IDataProtectionBuilder builder, string directory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        builder.Services.Configure<DpkeyringSourceOptions>(o => o.AgentFolder = Path.GetFullPath(directory));
        AddCore(builder.Services);
        return builder;
    }

    private static IDataProtectionBuilder AddServer(IDataProtectionBuilder builder, string settingPrefix)
    {
        builder.Services.Configure<DpkeyringSourceOptions>(o =>
        {
            o.Server = true;
            o.SettingPrefix = settingPrefix;
        });
        AddCore(builder.Services);
        return builder;
    }

    /// <summary>The services both sources share; idempotent, so a package and the application may both call the extensions.</summary>
    private static void AddCore(IServiceCollection services)
    {
        services.AddOptions<DpkeyringOptions>().ValidateOnStart();
        if (services.Any(d => d.ServiceType == typeof(RingFollower)))
        {
            return;
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DpkeyringOptions>, DpkeyringOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<DpkeyringOptions>, DpkeyringOptionsDefaults>());
        services.AddMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(CreateFollower);
        services.AddSingleton<DpkeyringXmlRepository>();

        // First of the hosted services: Data Protection's own (registered by AddDataProtection)
        // loads the key ring at start and only logs a failure; the ring must be there before it.
        services.Insert(0, ServiceDescriptor.Singleton<IHostedService, DpkeyringStartup>());

        // PostConfigure, so that a repository configured elsewhere (or AutoGenerateKeys turned back
        // on) cannot silently take over: a node with dpkeyring reads only dpkeyring and makes no keys.
        services.AddOptions<KeyManagementOptions>().PostConfigure<DpkeyringXmlRepository>((options, repository) =>
        {
            options.XmlRepository = repository;
            options.AutoGenerateKeys = false;
        });

        DecorateKeyManager(services);
    }

    private static RingFollower CreateFollower(IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptions<DpkeyringOptions>>().Value;
        var source = services.GetRequiredService<IOptions<DpkeyringSourceOptions>>().Value;
        var time = services.GetRequiredService<TimeProvider>();
        var loggerFactory = services.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance;
        IRingFeed feed = source.AgentFolder is { } folder
            ? new FolderRingFeed(folder, options.PollWait, time)
            : new HttpRingFeed(options, source.SettingPrefix, time, loggerFactory.CreateLogger(Log.Category));
        return new RingFollower(
            feed,
            new RingValidator(services),
            source.AgentFolder is null ? options.Ring : Path.GetFileName(source.AgentFolder.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar)),
            options.PollWait,
            options.StartupTimeout,
            services,
            time,
            loggerFactory,
            services.GetService<System.Diagnostics.Metrics.IMeterFactory>());
    }

    /// <summary>Wraps the registered key manager (ASP.NET Core's <see cref="XmlKeyManager"/>) in <see cref="DpkeyringKeyManager"/>.</summary>
    private static void DecorateKeyManager(IServiceCollection services)
    {
        var inner = services.LastOrDefault(d => d.ServiceType == typeof(IKeyManager) && !d.IsKeyedService)
            ?? throw new InvalidOperationException("dpkeyring: no IKeyManager is registered; call services.AddDataProtection() first.");
        services.Remove(inner);
        services.AddSingleton<IKeyManager>(sp => new DpkeyringKeyManager(Create(sp, inner), sp.GetRequiredService<RingFollower>()));
    }

    private static IKeyManager Create(IServiceProvider services, ServiceDescriptor descriptor) =>
        (IKeyManager)(descriptor.ImplementationInstance
            ?? descriptor.ImplementationFactory?.Invoke(services)
            ?? ActivatorUtilities.CreateInstance(services, descriptor.ImplementationType!));
}
