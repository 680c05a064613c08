using System.Reflection;
using Dpkeyring.AspNetCore;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Umbraco.Cms.Core.Composing;
using Umbraco.Cms.Core.DependencyInjection;

namespace Dpkeyring.Umbraco;

/// <summary>
/// Umbraco finds this composer by itself once the package is installed. When the
/// <c>Dpkeyring</c> configuration section has a <c>Url</c>, it makes the site read its Data
/// Protection keys from that dpkeyring server
/// (<see cref="DpkeyringDataProtectionBuilderExtensions.PersistKeysToDpkeyring(IDataProtectionBuilder, IConfiguration)"/>
/// with the section, validated when the site starts), sets the application name from
/// <c>Dpkeyring:ApplicationName</c> when that is set, and adds the <c>dpkeyring</c> health check
/// (unless the application adds one of that name itself).
/// Without a <c>Url</c> it changes nothing and logs one line saying how to turn it on.
/// </summary>
/// <remarks>
/// <para>
/// If the application already set dpkeyring up itself before the composers ran (in
/// <c>Program.cs</c> before <c>CreateUmbracoBuilder()</c>, or in a composer that runs first), this
/// composer sees it and adds nothing, so the site never gets a second repository or a second
/// health check of the same name. To set it up only in code, turn this composer off with
/// <c>[assembly: DisableComposer(typeof(DpkeyringComposer))]</c>.
/// </para>
/// </remarks>
public sealed class DpkeyringComposer : IComposer
{
    /// <summary>The configuration section the composer reads: <c>Dpkeyring</c>.</summary>
    internal const string SectionName = "Dpkeyring";

    /// <summary>The setting that turns the composer on.</summary>
    internal const string UrlKey = "Url";

    /// <summary>The setting that names the application (the first purpose of every payload).</summary>
    internal const string ApplicationNameKey = "ApplicationName";

    /// <summary>The name of the health check the composer adds.</summary>
    internal const string HealthCheckName = "dpkeyring";

    /// <inheritdoc />
    public void Compose(IUmbracoBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);

        // Composers run while the service collection is still being filled, before any container
        // exists, so nothing can be resolved here to log with. Umbraco hands every composer
        // BuilderLoggerFactory for exactly this: it writes to the same Serilog logger as the rest
        // of Umbraco's start-up (the console and umbraco/Logs), at the moment the decision is made.
        // A hosted service or startup filter would log later, but it would have to be registered,
        // and the "no Url" case promises to change nothing at all in the service collection.
        ILogger logger = builder.BuilderLoggerFactory.CreateLogger(Log.Category);
        IConfigurationSection section = builder.Config.GetSection(SectionName);

        string? url = section[UrlKey];
        if (string.IsNullOrWhiteSpace(url))
        {
            Log.NotEnabled(logger, $"{SectionName}:{UrlKey}", $"{SectionName}:TokenFile");
            return;
        }

        // The core package's services are idempotent, but a second PersistKeysToDpkeyring(section)
        // would bind this section over what the application configured (its own section, or
        // options set in code). So when the application has already wired the core package before
        // the composers ran, leave its choice alone. (An application that wires it after the
        // composers should turn this composer off with DisableComposer; the README says so.)
        if (IsDpkeyringAlreadyConfigured(builder.Services))
        {
            Log.AlreadyConfigured(logger);
            return;
        }

        string? applicationName = section[ApplicationNameKey];
        if (applicationName is not null && (applicationName.Length == 0 || applicationName.Trim() != applicationName))
        {
            // Every node must use the very same name; a stray space would split them silently.
            throw new InvalidOperationException(
                $"{SectionName}:{ApplicationNameKey} must not be empty or start or end with white space; remove the setting to keep the content-root path as the application name.");
        }

        IDataProtectionBuilder dataProtection = builder.Services.AddDataProtection().PersistKeysToDpkeyring(section);
        if (applicationName is not null)
        {
            dataProtection.SetApplicationName(applicationName);
        }

        // One check of this name even if the application adds it too (AddDpkeyring is idempotent per name).
        builder.Services.AddHealthChecks().AddDpkeyring(HealthCheckName);

        // Scheme, host and port only: a URL with user information must not put it in the log.
        string server = Uri.TryCreate(url, UriKind.Absolute, out Uri? uri) ? $"{uri.Scheme}://{uri.Authority}" : "(not a URL; the start will say why)";
        Log.Enabled(logger, server, section["Ring"] ?? "default", applicationName ?? "(the content-root path)");
    }

    /// <summary>
    /// Whether the service collection already holds a registration of the core package: a service
    /// or implementation type from <c>Dpkeyring.AspNetCore</c>, or a generic one over such a type
    /// (<c>IConfigureOptions&lt;DpkeyringOptions&gt;</c> and the like).
    /// </summary>
    internal static bool IsDpkeyringAlreadyConfigured(IServiceCollection services)
    {
        Assembly core = typeof(DpkeyringOptions).Assembly;
        foreach (ServiceDescriptor descriptor in services)
        {
            Type? implementation = descriptor.IsKeyedService ? descriptor.KeyedImplementationType : descriptor.ImplementationType;
            if (Mentions(descriptor.ServiceType, core) || (implementation is not null && Mentions(implementation, core)))
            {
                return true;
            }
        }

        return false;
    }

    private static bool Mentions(Type type, Assembly assembly) =>
        type.Assembly == assembly || (type.IsGenericType && Array.Exists(type.GetGenericArguments(), argument => Mentions(argument, assembly)));
}
