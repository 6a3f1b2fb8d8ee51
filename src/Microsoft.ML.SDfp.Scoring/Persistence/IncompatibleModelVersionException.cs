namespace Microsoft.ML.SDfp.Persistence;

/// <summary>
/// A classifier written by a version of Microsoft.ML.SDfp whose model format this one cannot read (or whose version
/// fields are damaged): a type of its own, so that <c>Model.LoadChecked</c> recognises it without reading its message.
/// </summary>
internal sealed class IncompatibleModelVersionException(string message, Exception inner) : IOException(message, inner);
