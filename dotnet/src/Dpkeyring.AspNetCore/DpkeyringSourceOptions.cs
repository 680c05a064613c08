namespace Dpkeyring.AspNetCore;

/// <summary>
/// Which source feeds the ring: the server (<c>PersistKeysToDpkeyring</c>) or an agent's folder
/// (<c>UseDpkeyringAgentFolder</c>). Set by the builder extensions only.
/// </summary>
internal sealed class DpkeyringSourceOptions
{
    /// <summary>Set by <c>PersistKeysToDpkeyring</c>.</summary>
    public bool Server { get; set; }

    /// <summary>Set by <c>UseDpkeyringAgentFolder</c>.</summary>
    public string? AgentFolder { get; set; }

    /// <summary>
    /// How validation messages name a setting: the configuration section's path plus ':' when
    /// the options were bound from configuration, else <c>DpkeyringOptions.</c>.
    /// </summary>
    public string SettingPrefix { get; set; } = "DpkeyringOptions.";
}
