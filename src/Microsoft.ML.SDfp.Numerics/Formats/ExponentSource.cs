namespace Microsoft.ML.SDfp.Numerics.Formats;

/// <summary>Where the shared exponent of a tensor comes from.</summary>
public enum ExponentSource
{
    /// <summary>The amax of the tensor being quantised (needs one reduction before quantising). The default.</summary>
    Current,

    /// <summary>
    /// The maximum amax over the last <see cref="DfpFormat.HistoryLength"/> earlier steps of the same stream, as
    /// hardware with a one-pass datapath would do it. The first step, with an empty history, uses the current amax.
    /// </summary>
    Delayed,
}
