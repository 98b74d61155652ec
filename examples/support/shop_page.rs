//! The benchmarks' page: 100 KiB of a product listing with a short head (`bench_backend`
//! serves it, `splice_cost` splices into it).

pub fn shop_page() -> String {
    let mut page = String::from("<!doctype html><html><head><meta charset=\"utf-8\"><title>Shop</title><link rel=\"stylesheet\" href=\"/a.css\"></head><body>\n");
    let mut i = 0u64;
    while page.len() < 100 * 1024 {
        i += 1;
        page.push_str(&format!(
            "<div class=\"product card-{}\"><a href=\"/product/{}\">Product {} with a longer name</a><span class=\"price\">{}.{:02} EUR</span><p>Lorem ipsum dolor sit amet, consectetur adipiscing elit {}.</p></div>\n",
            i % 7, i * 7919 % 100_000, i, i * 37 % 500, i % 100, i * 13
        ));
    }
    page.push_str("</body></html>\n");
    page
}
