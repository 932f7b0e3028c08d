// The merge's scratch pool (Merging/NativeBuffers.cs): a rental takes the smallest waiting block that fits, blocks too
// small for a rental are freed instead of kept, at most MaxFree wait, and a block it did not hand out is refused.
using CloudSoup.Engine.Merging;

namespace CloudSoup.Tests.Merging;

public class ScratchBuffersTests
{
    [Fact]
    public void A_rental_takes_the_smallest_waiting_block_that_fits()
    {
        using var pool = new ScratchBuffers();
        nint small = pool.Rent(1_000), big = pool.Rent(100_000), middle = pool.Rent(10_000);
        foreach (var block in new[] { small, big, middle }) pool.Return(block);
        Assert.Equal(middle, pool.Rent(5_000));
        Assert.Equal(big, pool.Rent(10_001));
        Assert.Equal(small, pool.Rent(1_000));
        Assert.Equal(0, pool.FreeBytes);
    }

    [Fact]
    public void Blocks_too_small_for_a_rental_are_freed_and_no_more_than_max_free_wait()
    {
        using var pool = new ScratchBuffers();
        var blocks = Enumerable.Range(1, ScratchBuffers.MaxFree + 3).Select(i => pool.Rent(i * 1_000)).ToList();
        blocks.ForEach(pool.Return);
        // The three smallest went: the waiting ones are the MaxFree largest.
        Assert.Equal(Enumerable.Range(4, ScratchBuffers.MaxFree).Sum(i => i * 1_000L), pool.FreeBytes);
        // Nothing fits 1 MB: a new block, and every waiting block (all smaller) is freed.
        nint huge = pool.Rent(1 << 20);
        Assert.Equal(0, pool.FreeBytes);
        pool.Return(huge);
        Assert.Equal(1 << 20, pool.FreeBytes);
    }

    [Fact]
    public void A_block_not_rented_here_is_refused()
    {
        using var pool = new ScratchBuffers();
        nint block = pool.Rent(64);
        pool.Return(block);
        Assert.Throws<ArgumentException>(() => pool.Return(block));   // given back twice
        Assert.Throws<ArgumentException>(() => pool.Return(12_345));
    }
}
