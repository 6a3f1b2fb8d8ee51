namespace Microsoft.ML.SDfp.Training;

/// <summary>The learning rate of every optimizer step: linear warm-up, then the chosen schedule.</summary>
/// <remarks>
/// Computed per step rather than per epoch, so a cosine decay or a warm-up is smooth even with few epochs.
/// Steps are 0-based and counted over the whole run.
/// </remarks>
internal sealed class LearningRateScheduler
{
    private readonly TrainingOptions _options;

    /// <summary>Creates the schedule for a run of <see cref="TrainingOptions.Epochs"/> epochs with <paramref name="stepsPerEpoch"/> steps each.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Invalid options, or <paramref name="stepsPerEpoch"/> &lt; 1.</exception>
    public LearningRateScheduler(TrainingOptions options, int stepsPerEpoch)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        ArgumentOutOfRangeException.ThrowIfLessThan(stepsPerEpoch, 1);
        _options = options;
        StepsPerEpoch = stepsPerEpoch;
        TotalSteps = (long)options.Epochs * stepsPerEpoch;
        WarmupSteps = (long)options.WarmupEpochs * stepsPerEpoch;
    }

    /// <summary>Optimizer steps in one epoch.</summary>
    public int StepsPerEpoch { get; }

    /// <summary>Optimizer steps in the whole run.</summary>
    public long TotalSteps { get; }

    /// <summary>Steps of linear warm-up at the start.</summary>
    public long WarmupSteps { get; }

    /// <summary>The learning rate for the 0-based global step <paramref name="step"/>.</summary>
    /// <remarks>
    /// Warm-up: step k &lt; W uses base·(k+1)/W, so the first step already moves and step W-1 reaches the base rate.
    /// Step schedule: base·gamma^floor(epoch/StepSize) with the 0-based epoch of the step.
    /// Cosine: base·(1+cos(π·t/T))/2 with t = k−W and T = total−W steps, so the last step's rate is just above zero.
    /// </remarks>
    public double At(long step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        var baseRate = _options.LearningRate;
        if (step < WarmupSteps)
            return baseRate * (step + 1) / WarmupSteps;
        switch (_options.Schedule)
        {
            case LearningRateSchedule.Constant:
                return baseRate;
            case LearningRateSchedule.Step:
                var epoch = step / StepsPerEpoch;
                return baseRate * Math.Pow(_options.StepGamma, epoch / _options.StepSize);
            case LearningRateSchedule.Cosine:
                var span = TotalSteps - WarmupSteps;
                if (span <= 0)
                    return baseRate;
                var t = Math.Min(step - WarmupSteps, span);
                return baseRate * 0.5 * (1 + Math.Cos(Math.PI * t / span));
            default:
                throw new InvalidOperationException($"Unknown learning-rate schedule {_options.Schedule}.");
        }
    }
}
