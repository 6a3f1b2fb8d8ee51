using System.Reflection;
using Microsoft.ML.Data;
using Microsoft.ML.Data.IO;
using Microsoft.ML.SDfp.Persistence;

namespace Microsoft.ML.SDfp.Scoring;

/// <summary>
/// The training label's KeyValues (class names), whatever their item type, with the annotations a multiclass score
/// column and a predicted-label key column carry, and their persistence through ML.NET's BinarySaver.
/// </summary>
internal sealed class LabelNames
{
    private readonly object _values; // VBuffer<T>, T = Type.ItemType.RawType

    private LabelNames(VectorDataViewType type, object values)
    {
        Type = type;
        _values = values;
    }

    public VectorDataViewType Type { get; }

    public int Count => Type.Size;

    /// <summary>Reads the KeyValues annotation of a key column, or returns null when it has none.</summary>
    public static LabelNames? FromKeyColumn(DataViewSchema.Column column)
    {
        if (column.Annotations.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues) is not { Type: VectorDataViewType type } annotation)
        {
            return null;
        }

        object values = Invoke(nameof(ReadValues), type.ItemType.RawType, column.Annotations, annotation);
        return new LabelNames(type, values);
    }

    private static object ReadValues<T>(DataViewSchema.Annotations annotations, DataViewSchema.Column annotation)
    {
        VBuffer<T> values = default;
        annotations.GetValue(annotation.Name, ref values);
        VBuffer<T> copy = default;
        values.CopyTo(ref copy);
        return copy;
    }

    /// <summary>The class names as strings (for messages and tests).</summary>
    public IReadOnlyList<string> AsStrings() => (IReadOnlyList<string>)Invoke(nameof(ToStrings), Type.ItemType.RawType, _values);

    private static IReadOnlyList<string> ToStrings<T>(object values) =>
        ((VBuffer<T>)values).DenseValues().Select(v => v?.ToString() ?? string.Empty).ToArray();

    /// <summary>Same item type and values (the condition for a validation set to share the training label's keys).</summary>
    public bool SameAs(LabelNames other) =>
        Type.Equals(other.Type) && AsStrings().SequenceEqual(other.AsStrings(), StringComparer.Ordinal);

    /// <summary>Annotations of the Score column: slot names, score kind and value kind, score set id, training label values.</summary>
    public DataViewSchema.Annotations ScoreAnnotations(uint scoreColumnSetId)
    {
        var builder = new DataViewSchema.Annotations.Builder();
        if (Type.ItemType is TextDataViewType)
        {
            Invoke(nameof(AddValues), typeof(ReadOnlyMemory<char>), builder, AnnotationUtils.Kinds.SlotNames, Type, _values);
        }

        AddScoreKinds(builder, scoreColumnSetId, AnnotationUtils.Const.ScoreValueKind.Score);
        Invoke(nameof(AddValues), Type.ItemType.RawType, builder, AnnotationUtils.Kinds.TrainingLabelValues, Type, _values);
        return builder.ToAnnotations();
    }

    /// <summary>Annotations of the PredictedLabel column: the key values, and the kinds of a predicted label.</summary>
    public DataViewSchema.Annotations PredictedLabelAnnotations(uint scoreColumnSetId)
    {
        var builder = new DataViewSchema.Annotations.Builder();
        Invoke(nameof(AddValues), Type.ItemType.RawType, builder, AnnotationUtils.Kinds.KeyValues, Type, _values);
        AddScoreKinds(builder, scoreColumnSetId, AnnotationUtils.Const.ScoreValueKind.PredictedLabel);
        return builder.ToAnnotations();
    }

    private static void AddScoreKinds(DataViewSchema.Annotations.Builder builder, uint scoreColumnSetId, string valueKind)
    {
        builder.Add(AnnotationUtils.Kinds.ScoreColumnSetId, AnnotationUtils.ScoreColumnSetIdType, (ref uint value) => value = scoreColumnSetId);
        builder.Add(AnnotationUtils.Kinds.ScoreColumnKind, TextDataViewType.Instance,
            (ref ReadOnlyMemory<char> value) => value = AnnotationUtils.Const.ScoreColumnKind.MulticlassClassification.AsMemory());
        builder.Add(AnnotationUtils.Kinds.ScoreValueKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> value) => value = valueKind.AsMemory());
    }

    private static object? AddValues<T>(DataViewSchema.Annotations.Builder builder, string kind, VectorDataViewType type, object values)
    {
        var buffer = (VBuffer<T>)values;
        builder.Add(kind, type, (ref VBuffer<T> destination) => buffer.CopyTo(ref destination));
        return null;
    }

    /// <summary>Writes type and values with ML.NET's BinarySaver (the format its own scorers use for label names).</summary>
    public void Save(Microsoft.ML.Runtime.IHostEnvironment env, Stream stream) => Invoke(nameof(SaveValues), Type.ItemType.RawType, env, stream, Type, _values);

    private static object? SaveValues<T>(Microsoft.ML.Runtime.IHostEnvironment env, Stream stream, VectorDataViewType type, object values)
    {
        var buffer = (VBuffer<T>)values;
        var saver = new BinarySaver(env, new BinarySaver.Arguments());
        if (!saver.TryWriteTypeAndValue(stream, type, ref buffer, out _))
        {
            throw new InvalidOperationException($"Cannot save label values of type {type.ItemType}.");
        }

        return null;
    }

    /// <summary>Reads what <see cref="Save"/> wrote; a failure is a <see cref="ModelFileCorruptException"/> naming <paramref name="entry"/>.</summary>
    public static LabelNames Load(Microsoft.ML.Runtime.IHostEnvironment env, Stream stream, string entry)
    {
        var saver = new BinarySaver(env, new BinarySaver.Arguments());
        if (saver.TryLoadTypeAndValue(stream, out DataViewType type, out object value) && type is VectorDataViewType vector && value is not null)
        {
            return new LabelNames(vector, value);
        }

        throw new ModelFileCorruptException(entry, "has label values that cannot be read.");
    }

    private static object Invoke(string method, Type typeArgument, params object[] arguments)
    {
        try
        {
            return typeof(LabelNames).GetMethod(method, BindingFlags.NonPublic | BindingFlags.Static)!
                .MakeGenericMethod(typeArgument).Invoke(null, arguments)!;
        }
        catch (TargetInvocationException ex) when (ex.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(ex.InnerException);
            throw;
        }
    }
}
