namespace Microsoft.ML.SDfp.Runtime;

/// <summary>
/// TorchSharp's native library could not be made loadable on this machine. The message names
/// the cause and the fix.
/// </summary>
public sealed class NativeLoadException : Exception
{
    /// <summary>Creates the exception with a message that names the cause and the fix.</summary>
    public NativeLoadException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the underlying error.</summary>
    public NativeLoadException(string message, Exception inner) : base(message, inner) { }
}
