from invoicing.api import metering_urls, pricing_urls

urlpatterns = [*metering_urls.urlpatterns, *pricing_urls.urlpatterns]
