namespace Microsoft.ML.SDfp.Persistence;

/// <summary>How a state-dict tensor is stored in the model file's weights stream (the byte written before it).</summary>
internal enum StoredTensorKind : byte
{
    /// <summary>FP32 values (batch norm, FP32 layers).</summary>
    Float32 = 0,

    /// <summary>A quantised weight of at most 8 bits: int8 integers and one exponent.</summary>
    Int8 = 1,

    /// <summary>A quantised weight of 9 to 16 bits: int16 integers and one exponent.</summary>
    Int16 = 2,

    /// <summary>Int64 values (batch norm's num_batches_tracked).</summary>
    Int64 = 3,
}
